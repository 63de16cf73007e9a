// packer:promote GROUP --from staging --to production: production's machines run the exact AMI
// staging runs (staging's stack output), without a rebake. The image is pinned in production's stack
// intent (muster:image, with where it came from); production's program then exports it as its ami
// and launches its fleet and instances from it, and its own bake part is off while it is pinned.
// When the environments are in different regions the AMI is copied across first (tags included),
// and a copy made earlier (found by its muster:source-* tags) is reused.
//
// Order: every refusal (no environments, an unknown one, no baked image in --from) before anything
// is opened for writing; then the plan and the stack's preview; then the question; then the copy;
// then the stack update. A refused or declined promote changes nothing.
import {type ImageCopyStore, copyTags, createImageCopyStore, startCopy, waitAvailable, type WaitOptions} from '../aws/copy.js'
import {InterruptedError, UserError} from '../errors.js'
import {TAG_ENVIRONMENT} from '../lib/tags.js'
import {loadNodes} from '../nodes/load.js'
import {BASE, type Group, requirePacker} from '../nodes/model.js'
import {stackName} from '../nodes/environments.js'
import type {Intent, PinnedImage} from '../stacks/intent.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface PromoteOptions extends Omit<ProjectOptions, 'environment'> {
  group: string
  from: string
  to: string
  previewOnly: boolean
  /** Tests pass their own; default: the AWS SDK in each region. */
  openCopyStore?: (region: string) => ImageCopyStore
  wait?: Omit<WaitOptions, 'progress'>
  now?: () => Date
}

export type CopyAction = 'none' | 'reuse' | 'copy'

export interface PromotePlan {
  group: string
  from: string
  to: string
  /** The image --from runs (its stack's ami output), in its region. */
  source: {id: string; region: string}
  /** Where --to runs; its image id is known unless a copy is still to be made. */
  target: {region: string; id: string | undefined}
  /** none: same region; reuse: a copy made earlier; copy: a new copy. */
  copy: CopyAction
  /** What --to has pinned now, if anything. */
  current: PinnedImage | undefined
}

export interface PromoteResult {
  plan: PromotePlan
  /** The image --to runs now (undefined on --preview when the copy is still to be made). */
  image: string | undefined
  previewOnly: boolean
  stack: ApplyResult
}

const environmentRefusal = (flag: '--from' | '--to', name: string, file: string, names: string[]): UserError =>
  new UserError(`${flag} ${name}: no environment "${name}" in ${file}`, {hint: `Environments: ${names.join(', ')}. Name one of them with ${flag}; nothing was changed.`})

export async function packerPromote(options: PromoteOptions, io: IoHost): Promise<PromoteResult> {
  // Refusals that need only the nodes file come first.
  const declared = loadNodes({cwd: options.cwd, path: options.nodesPath})
  const names = [...declared.environments.keys()]
  if (names.length === 0) {
    throw new UserError(`${declared.file} declares no environments, so there is nothing to promote between`, {
      hint: 'packer:promote moves an image from one environment to another (README "Environments"); without environments, packer:run bakes the group\'s image.',
    })
  }
  if (!declared.environments.has(options.from)) throw environmentRefusal('--from', options.from, declared.file, names)
  if (!declared.environments.has(options.to)) throw environmentRefusal('--to', options.to, declared.file, names)
  if (options.from === options.to) {
    throw new UserError(`--from and --to are both ${options.from}`, {hint: 'Promote from one environment to another, e.g. --from staging --to production.'})
  }
  if (options.group === BASE) {
    // The generic refusal would suggest leaving GROUP out or packer:create, neither of which promotes anything.
    throw new UserError(`${BASE} is not a node group, so there is no fleet to promote its image to; nothing was changed`, {
      hint: `Promote a group's image (muster ls --env ${options.from} lists them): muster packer:promote GROUP --from ${options.from} --to ${options.to}`,
    })
  }
  const project = new Project({...options, environment: options.to}, io)
  const notBase = {what: 'images to promote', done: 'nothing was changed'}
  const target = project.group(options.group, notBase)
  requirePacker(target)
  const source = declared.environments.get(options.from)?.groups.get(options.group) as Group
  requirePacker(source)

  const plan = await planPromotion(project, options, source, target, io)
  io.progress(describePlan(plan))

  const open = options.openCopyStore ?? createImageCopyStore
  const now = (options.now ?? (() => new Date()))()
  const pin = (id: string): PinnedImage => {
    // The same promotion again keeps its record (and time), so it changes nothing.
    if (plan.current && plan.current.id === id && plan.current.sourceId === plan.source.id && plan.current.from === plan.from) return plan.current
    return {id, from: plan.from, sourceId: plan.source.id, sourceRegion: plan.source.region, promotedAt: now.toISOString()}
  }
  const pinned = (id: string) => (intent: Intent): Intent => ({...intent, image: pin(id)})

  // The preview names the copy's id when there is one; a copy still to be made is previewed with the source's id.
  const previewId = plan.target.id ?? plan.source.id
  const previewed = await updateStacks(project, {groups: [target], change: pinned(previewId), parts: undefined, previewOnly: true}, io)
  if (options.previewOnly) return {plan, image: plan.target.id, previewOnly: true, stack: previewed}

  const stackChanges = previewed.groups.some((g) => g.preview.counts.create + g.preview.counts.update + g.preview.counts.replace + g.preview.counts.delete > 0)
  const recordChanges = plan.current?.id !== previewId || plan.current?.sourceId !== plan.source.id
  if (plan.copy === 'copy' || stackChanges || recordChanges) {
    await io.confirm({
      question: `Promote ${plan.source.id} from ${plan.from} to ${plan.to} for ${plan.group}${plan.copy === 'copy' ? ` (copying it to ${plan.target.region})` : ''}?`,
      unattended: {message: `promoting an image to ${plan.to} needs confirmation and there is no terminal`, hint: `Review the plan above, then run: muster packer:promote ${plan.group} --from ${plan.from} --to ${plan.to} --yes`},
      declined: {message: 'nothing was changed', hint: 'Run again and answer yes, or use --preview to only look.'},
    })
  }

  // A Ctrl-C while asking (or previewing) stops here, before any copy or pin.
  if (io.interrupt?.aborted) throw new InterruptedError('interrupted (Ctrl-C) before promoting; nothing was changed', {hint: 'Run the same packer:promote again.'})
  let imageId = plan.target.id
  if (plan.copy !== 'none') {
    const store = open(plan.target.region)
    try {
      if (plan.copy === 'copy') {
        const sourceStore = open(plan.source.region)
        let sourceImage
        try {
          sourceImage = await sourceStore.describe(plan.source.id)
        } finally {
          sourceStore.close()
        }
        if (!sourceImage) throw noSourceImage(plan)
        // Looked for again: another promote may have made the copy since the plan.
        // The copy is the --to environment's image (in its region, what it runs): tagged as its, so its
        // retention (packer:clean --env TO) retires copies no stack pins any more instead of leaving
        // them to no one; its muster:source-* tags say where it came from.
        const tags = {...copyTags(sourceImage, plan.source.region), [TAG_ENVIRONMENT]: plan.to}
        imageId = await startCopy(store, {...plan.source, name: sourceImage.name, description: sourceImage.description}, tags)
        io.progress(`${plan.group}: copying ${plan.source.id} (${plan.source.region}) to ${plan.target.region} as ${imageId}; its tags name the source, so an interrupted promote finds it again`)
      }
      await waitAvailable(store, imageId as string, {...options.wait, signal: io.interrupt, progress: (line) => io.progress(`${plan.group}: ${line}`)})
    } finally {
      store.close()
    }
  }
  const stack = await updateStacks(project, {groups: [target], change: pinned(imageId as string), parts: undefined, previewOnly: false, ask: false}, io)
  return {plan, image: imageId, previewOnly: false, stack}
}

function noSourceImage(plan: Pick<PromotePlan, 'group' | 'from' | 'source'>): UserError {
  return new UserError(`${plan.from}'s image of ${plan.group}, ${plan.source.id}, no longer exists in ${plan.source.region}`, {
    hint: `Bake it again with muster packer:run ${plan.group} --env ${plan.from}, then promote; nothing was changed.`,
  })
}

/** What the promotion would do, read from the --from stack and EC2; changes nothing. */
async function planPromotion(project: Project, options: PromoteOptions, source: Group, target: Group, io: Pick<IoHost, 'progress'>): Promise<PromotePlan> {
  const session = project.session()
  const fromStack = await session.openExisting(source)
  const outputs = fromStack ? await fromStack.outputs() : {}
  const ami = typeof outputs.ami === 'string' && /^ami-[0-9a-f]+$/.test(outputs.ami) ? outputs.ami : undefined
  if (!ami) {
    throw new UserError(`group ${options.group} has no baked image in ${options.from} (stack ${stackName(source)} ${fromStack ? 'has no ami output' : 'does not exist'})`, {
      hint: `Bake and test it there first: run muster packer:run ${options.group} --env ${options.from} first, then promote; nothing was changed.`,
    })
  }
  const toStack = await session.openExisting(target)
  const current = toStack ? (await toStack.intent()).image : undefined
  const plan: PromotePlan = {group: options.group, from: options.from, to: options.to, source: {id: ami, region: source.region}, target: {region: target.region, id: undefined}, copy: 'none', current}
  const open = options.openCopyStore ?? createImageCopyStore
  const sourceStore = open(source.region)
  try {
    if (!(await sourceStore.describe(ami))) throw noSourceImage(plan)
  } finally {
    sourceStore.close()
  }
  if (source.region === target.region) return {...plan, target: {region: target.region, id: ami}}
  const store = open(target.region)
  try {
    const copies = await store.findCopies(plan.source)
    const copy = copies.find((c) => c.state === 'available') ?? copies[0]
    if (copy) io.progress(`${options.group}: ${copy.id} in ${target.region} is a copy of ${ami} made earlier (${copy.state}): reusing it`)
    return copy ? {...plan, target: {region: target.region, id: copy.id}, copy: 'reuse'} : {...plan, copy: 'copy'}
  } finally {
    store.close()
  }
}

/** One line: what the promotion does. */
export function describePlan(plan: PromotePlan): string {
  const what =
    plan.copy === 'none'
      ? `${plan.to} (${plan.target.region}) runs ${plan.source.id}, the image ${plan.from} runs`
      : plan.copy === 'reuse'
        ? `${plan.to} (${plan.target.region}) runs ${plan.target.id}, the copy of ${plan.from}'s ${plan.source.id} (${plan.source.region})`
        : `${plan.from}'s ${plan.source.id} is copied from ${plan.source.region} to ${plan.target.region} (tags included) and ${plan.to} runs the copy`
  const runs = plan.target.id ?? plan.source.id
  const before = !plan.current ? '' : plan.current.id === runs && plan.current.from === plan.from ? '; it already is (nothing to change)' : `; it was pinned to ${plan.current.id} (from ${plan.current.from})`
  return `${plan.group}: ${what}${before}; ${plan.to}'s own bake is off while the image is pinned`
}
