// packer:run (bake through the stack), packer:clean (record N, run the retention part) and the
// retention itself (packer:retain, packer:clean --dry-run), which asks AWS directly.
import {retainGroupImages} from '../aws/clean.js'
import {createImageStore, type ImageStore} from '../aws/ec2.js'
import {findBakedImage} from '../aws/orphans.js'
import type {ImagesInUse, ImageUser} from '../aws/images-in-use.js'
import type {RetentionResult} from '../aws/retention.js'
import {readPins} from '../stacks/pins.js'
import {BASE, bakedNodeGroups, type Group, isBaked, requirePacker} from '../nodes/model.js'
import type {Intent} from '../stacks/intent.js'
import type {IoHost} from './io.js'
import {buildsFromBase, Project, type ProjectOptions} from './project.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface PackerRunOptions extends ProjectOptions {
  groups?: string[] | undefined
  previewOnly: boolean
}

/**
 * packer:run: record "bake" and update the bake part (and the retention that follows a bake).
 * With no GROUP, __base__ is baked too when a group builds from it, and first: the groups built
 * from it are previewed and baked after it, against the base image it made.
 */
export async function packerRun(options: PackerRunOptions, io: IoHost): Promise<ApplyResult> {
  const project = new Project(options, io)
  const named = options.groups !== undefined && options.groups.length > 0
  const groups = project.withBaseFirst(project.select(options.groups, isBaked, requirePacker), named)
  const run = (some: Group[], stepOfRun = false): Promise<ApplyResult> =>
    updateStacks(project, {groups: some, change: (intent, group) => baking(intent, group, io), parts: ['bake', 'retention'], previewOnly: options.previewOnly, stepOfRun}, io)
  const [first, ...rest] = groups
  const fromBase = rest.filter(buildsFromBase)
  if (first?.name !== BASE || fromBase.length === 0) return run(groups)
  io.progress(`${BASE} first: ${fromBase.map((g) => g.name).join(', ')} ${fromBase.length === 1 ? 'builds' : 'build'} from its image`)
  // A failed base bake is the verb's error: the groups built from it are not baked on the old image.
  const base = await run([first])
  // The groups built from the base are programmed with the image it has now.
  project.forgetBaseImages()
  const others = await run(rest, true)
  return {...others, groups: [...base.groups, ...others.groups]}
}

/**
 * The intent of a bake: "bake" recorded, and an image promoted from another environment
 * (packer:promote) no longer pinned, since packer:run asks for the group's own image.
 */
function baking(intent: Intent, group: Group, io: Pick<IoHost, 'progress'>): Intent {
  const {image, ...rest} = intent
  if (image) io.progress(`[${group.name}] pinned to ${image.id} (promoted from ${image.from}); packer:run bakes ${group.environment ?? 'its'} own image instead`)
  return {...rest, bake: true}
}

export interface PackerCleanOptions extends ProjectOptions {
  /** Named groups, or undefined for every baked group. */
  groups?: string[] | undefined
  keep: number
  previewOnly: boolean
  now?: () => Date
}

/**
 * packer:clean without --dry-run: record N (and the time of asking) in each group's stack and
 * update only its retention part, which runs `muster packer:retain` inside the stack. The stack
 * then applies the same N after every bake.
 */
export async function packerClean(options: PackerCleanOptions, io: IoHost): Promise<ApplyResult> {
  const project = new Project(options, io)
  const askedAt = (options.now ?? (() => new Date()))().toISOString()
  const groups = project.select(options.groups, isBaked)
  return updateStacks(project, {groups, change: (intent) => ({...intent, keep: options.keep, cleanedAt: askedAt}), parts: ['retention'], previewOnly: options.previewOnly}, io)
}

export interface RetainOptions extends ProjectOptions {
  /** One group; default: every baked group (__base__ only when named). */
  group?: string | undefined
  keep: number
  dryRun: boolean
  openStore?: (region: string) => ImageStore & {close(): void}
}

/** packer:retain and packer:clean --dry-run: keep the newest N images of each group and those in use. */
export async function retainImages(options: RetainOptions, io: Pick<IoHost, 'progress'>): Promise<RetentionResult[]> {
  const project = new Project(options, io)
  const groups = options.group === undefined ? bakedNodeGroups(project.nodes) : [project.group(options.group)]
  const owner = project.owner()
  return retainGroupImages({groups, owner, keep: options.keep, dryRun: options.dryRun, pinned: (group) => pinnedUsers(project, group), ...(options.openStore ? {openStore: options.openStore} : {})})
}

/**
 * The images any environment's stack of the group pins (packer:promote), as users that keep them:
 * retention in staging never deregisters the image production was promoted to.
 */
export function pinnedUsers(project: Project, group: string): ImagesInUse {
  const users = new Map<string, ImageUser[]>()
  for (const pin of readPins(project.root, group, project.nodes.environments.keys())) {
    for (const id of new Set([pin.image.id, pin.image.sourceId])) {
      const user: ImageUser = {kind: 'pinned', id: pin.file, environment: pin.environment, description: `${pin.environment}'s stack (${pin.file}: promoted from ${pin.image.from})`}
      users.set(id, [...(users.get(id) ?? []), user])
    }
  }
  return users
}

export interface AdoptableOptions extends ProjectOptions {
  group: string
  templateHash: string
  cookbooksHash: string
  openStore?: (region: string) => ImageStore & {close(): void}
}

/**
 * Inside the bake, before Packer runs: an image already baked from the same template and cookbooks
 * (left by a bake whose muster was killed), which the bake adopts instead of baking a duplicate.
 */
export async function adoptableImage(options: AdoptableOptions, io: Pick<IoHost, 'progress'>): Promise<string | undefined> {
  const project = new Project(options, io)
  const group = project.group(options.group)
  const open = options.openStore ?? ((region: string) => createImageStore({region}))
  const store = open(group.region)
  try {
    const image = await findBakedImage(store, {group: group.name, ...project.owner(), templateHash: options.templateHash, cookbooksHash: options.cookbooksHash})
    return image?.id
  } finally {
    store.close()
  }
}
