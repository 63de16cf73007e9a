// AMI retention: keep a group's newest N images and anything still in use, deregister the rest
// and delete their snapshots. planRetention is pure; retireImages and deleteAllImages run a plan
// against an ImageStore.
//
// Only the project's own images (muster:project=PROJECT) are ever planned: another project's
// images of a group with the same name are left out, and legacy images (baked before images carried
// the project, so tagged with the group alone) are listed as such and never touched: packer:adopt
// makes them the project's.
import {UserError} from '../errors.js'
import {type ImageOwner, ownerTags, ownershipOf, TAG_ENVIRONMENT, TAG_PROJECT} from '../lib/tags.js'
import type {GroupImage, ImageStore} from './ec2.js'
import type {ImageUser, ImagesInUse} from './images-in-use.js'

/**
 * Why an image stays or goes:
 * - newest: among the newest N usable images;
 * - in-use: beyond the newest N, but something still launches from it or runs on it;
 * - pending: still being created (a bake in progress), never counted among the N;
 * - older: beyond the newest N and unused;
 * - failed: EC2 could not create it (failed, error, invalid): it counts for nothing;
 * - delete: packer:delete removes every image of the group.
 */
export type RetentionReason = 'newest' | 'in-use' | 'pending' | 'older' | 'failed' | 'delete'

export interface PlannedImage extends GroupImage {
  action: 'keep' | 'remove'
  reason: RetentionReason
  usedBy: ImageUser[]
}

export interface RetentionPlan {
  /** Newest first. */
  keep: PlannedImage[]
  /** Newest first. */
  remove: PlannedImage[]
  /** Image id → reason, for every image in keep and remove. */
  reasons: Record<string, RetentionReason>
  /** Snapshots of the removed images that no kept image shares. */
  snapshots: string[]
}

const UNUSABLE_STATES = new Set(['failed', 'error', 'invalid'])

/** Newest first: creation date, then name (Packer names carry the build time), then id. */
export function compareNewestFirst(a: GroupImage, b: GroupImage): number {
  const ta = Date.parse(a.created)
  const tb = Date.parse(b.created)
  const da = Number.isNaN(ta) ? -Infinity : ta
  const db = Number.isNaN(tb) ? -Infinity : tb
  if (da !== db) return db - da
  if (a.name !== b.name) return a.name < b.name ? 1 : -1
  if (a.id !== b.id) return a.id < b.id ? 1 : -1
  return 0
}

export function planRetention(images: readonly GroupImage[], inUse: ImagesInUse, keep: number): RetentionPlan {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be a whole number ≥ 0, got ${keep}`)
  const sorted = [...images].sort(compareNewestFirst)
  const planned: PlannedImage[] = []
  let counted = 0
  for (const image of sorted) {
    const usedBy = [...(inUse.get(image.id) ?? [])]
    const plan = (action: PlannedImage['action'], reason: RetentionReason): PlannedImage => ({...image, snapshotIds: [...image.snapshotIds], action, reason, usedBy})
    if (image.state === 'pending') planned.push(plan('keep', 'pending'))
    else if (UNUSABLE_STATES.has(image.state)) planned.push(plan(usedBy.length > 0 ? 'keep' : 'remove', usedBy.length > 0 ? 'in-use' : 'failed'))
    else if (counted < keep) {
      counted++
      planned.push(plan('keep', 'newest'))
    } else planned.push(plan(usedBy.length > 0 ? 'keep' : 'remove', usedBy.length > 0 ? 'in-use' : 'older'))
  }
  return toPlan(planned)
}

function toPlan(planned: PlannedImage[]): RetentionPlan {
  const keep = planned.filter((p) => p.action === 'keep')
  const remove = planned.filter((p) => p.action === 'remove')
  // Two images can share a snapshot (RegisterImage from an existing snapshot); a kept image's
  // snapshot must survive the removal of the other.
  const kept = new Set(keep.flatMap((p) => p.snapshotIds))
  const snapshots = [...new Set(remove.flatMap((p) => p.snapshotIds))].filter((s) => !kept.has(s))
  return {keep, remove, reasons: Object.fromEntries(planned.map((p) => [p.id, p.reason])), snapshots}
}

export interface RetentionFailure {
  /** The image or snapshot that could not be removed. */
  id: string
  message: string
}

export interface RetentionResult {
  group: string
  /** N, or undefined for deleteAllImages. */
  keep: number | undefined
  dryRun: boolean
  /** Newest first, with why each stays. */
  kept: PlannedImage[]
  /** Newest first: removed, or (dry run) would be. */
  removed: PlannedImage[]
  /** Images deregistered (none on a dry run). */
  deregistered: string[]
  /** Snapshots deleted (none on a dry run). */
  deletedSnapshots: string[]
  /** What could not be removed; the rest was still done. */
  failures: RetentionFailure[]
  /** The project whose images these are. */
  project: string
  /** Images of the group without a muster:project tag: listed, never touched (packer:adopt takes them in). Newest first. */
  legacy: GroupImage[]
  /** How many images of a group of this name belong to other projects (left alone). */
  otherProjects: number
}

/** The group's images sorted by owner: ours, legacy (no project tag) and how many are other projects'. */
export function sortByOwner(images: readonly GroupImage[], owner: ImageOwner): {ours: GroupImage[]; legacy: GroupImage[]; otherProjects: number} {
  const ours: GroupImage[] = []
  const legacy: GroupImage[] = []
  let otherProjects = 0
  for (const image of images) {
    const ownership = ownershipOf(image.tags, owner)
    if (ownership === 'ours') ours.push(image)
    else if (ownership === 'legacy') legacy.push(image)
    else otherProjects++
  }
  return {ours, legacy: legacy.sort(compareNewestFirst), otherProjects}
}

/** The id of the owner's newest usable image of a group ('' when it has none): what Packer's source_ami_filter of a from_base group picks. */
export async function newestOwnImage(store: ImageStore, group: string, owner: ImageOwner): Promise<string> {
  const {ours} = sortByOwner(await store.listGroupImages(group), owner)
  return ours.filter((i) => i.state === 'available').sort(compareNewestFirst)[0]?.id ?? ''
}

/** Two maps of users as one: what AWS says uses each image, and what pins it (packer:promote). */
export function withPinned(inUse: ImagesInUse, pinned: ImagesInUse | undefined): ImagesInUse {
  if (!pinned || pinned.size === 0) return inUse
  const merged = new Map<string, ImageUser[]>([...inUse].map(([id, users]) => [id, [...users]]))
  for (const [id, users] of pinned) merged.set(id, [...(merged.get(id) ?? []), ...users])
  return merged
}

export interface RetireOptions {
  store: ImageStore
  group: string
  /** Images an environment's stack pins (packer:promote): in use, whatever AWS says. */
  pinned?: ImagesInUse
  /** Whose images retention may remove. */
  owner: ImageOwner
  keep: number
  dryRun: boolean
}

export async function retireImages(options: RetireOptions): Promise<RetentionResult> {
  const {store, group, owner, keep, dryRun} = options
  const {ours, legacy, otherProjects} = sortByOwner(await store.listGroupImages(group), owner)
  // What uses an image is looked for across the whole account: a launch template of another
  // project (or environment) that launches one of ours still keeps it, and so does a stack that pins it.
  const inUse = withPinned(await store.imagesInUse(ours.map((i) => i.id)), options.pinned)
  const plan = planRetention(ours, inUse, keep)
  return apply(store, plan, {group, keep, dryRun, project: owner.project, legacy, otherProjects})
}

export interface DeleteAllOptions {
  store: ImageStore
  group: string
  /** Whose images go. */
  owner: ImageOwner
  /** Deregister images that are in use too. */
  force: boolean
  dryRun: boolean
  pinned?: ImagesInUse
}

/** Every image of the group the project owns goes (packer:delete); refuses while one is in use, unless forced. */
export async function deleteAllImages(options: DeleteAllOptions): Promise<RetentionResult> {
  const {store, group, owner, force, dryRun} = options
  const {ours, legacy, otherProjects} = sortByOwner(await store.listGroupImages(group), owner)
  const images = ours.sort(compareNewestFirst)
  const inUse = withPinned(await store.imagesInUse(images.map((i) => i.id)), options.pinned)
  const used = images.filter((i) => (inUse.get(i.id)?.length ?? 0) > 0)
  if (used.length > 0 && !force) {
    const lines = used.map((i) => `  ${i.id} ${i.name}: used by ${(inUse.get(i.id) ?? []).map((u) => u.description).join(', ')}`)
    throw new UserError(`${used.length} of the ${images.length} images of group ${group} ${used.length === 1 ? 'is' : 'are'} in use, so none was deregistered:\n${lines.join('\n')}`, {
      hint: 'Stop what uses them first (point the launch templates and Auto Scaling groups elsewhere, terminate the instances), or pass --force: running instances keep running, but nothing can launch from a deregistered image again.',
    })
  }
  const planned = images.map((image): PlannedImage => ({...image, snapshotIds: [...image.snapshotIds], action: 'remove', reason: 'delete', usedBy: [...(inUse.get(image.id) ?? [])]}))
  return apply(store, toPlan(planned), {group, keep: undefined, dryRun, project: owner.project, legacy, otherProjects})
}

type ResultMeta = Pick<RetentionResult, 'group' | 'keep' | 'dryRun' | 'project' | 'legacy' | 'otherProjects'>

async function apply(store: ImageStore, plan: RetentionPlan, meta: ResultMeta): Promise<RetentionResult> {
  const result: RetentionResult = {...meta, kept: plan.keep, removed: plan.remove, deregistered: [], deletedSnapshots: [], failures: []}
  if (meta.dryRun) return result
  const deletable = new Set(plan.snapshots)
  // How many images still to go reference each snapshot: EC2 refuses to delete a snapshot while
  // any image uses it, so a shared one goes with the last of its images.
  const references = new Map<string, number>()
  for (const image of plan.remove) for (const s of new Set(image.snapshotIds)) references.set(s, (references.get(s) ?? 0) + 1)
  // One image at a time, its snapshots right after it: an interrupted run leaves whole images
  // either in place or gone. A failure is recorded and the rest still goes.
  for (const image of plan.remove) {
    try {
      await store.deregisterImage(image.id)
      result.deregistered.push(image.id)
    } catch (error) {
      result.failures.push({id: image.id, message: messageOf(error)})
      continue
    }
    for (const snapshotId of new Set(image.snapshotIds)) {
      const left = (references.get(snapshotId) ?? 1) - 1
      references.set(snapshotId, left)
      if (left > 0 || !deletable.has(snapshotId)) continue
      try {
        await store.deleteSnapshot(snapshotId)
        result.deletedSnapshots.push(snapshotId)
      } catch (error) {
        result.failures.push({id: snapshotId, message: messageOf(error)})
      }
    }
  }
  return result
}

export interface AdoptOptions {
  store: ImageStore
  group: string
  owner: ImageOwner
  /** Only these images (each must be a legacy image of the group); undefined: every legacy image of the group. */
  imageIds?: readonly string[] | undefined
  dryRun: boolean
}

export interface AdoptResult {
  group: string
  project: string
  dryRun: boolean
  /** Legacy images tagged (dry run: to tag) with the project, newest first. */
  adopted: GroupImage[]
  /** Named images that were the project's already. */
  alreadyOurs: string[]
}

/**
 * packer:adopt: legacy images of a group (tagged muster:group=GROUP, no muster:project) become the
 * project's, by adding its tag; from then on retention, packer:delete and from_base see them.
 * Refuses, tagging nothing, an image that is not the group's or belongs to another project.
 */
export async function adoptImages(options: AdoptOptions): Promise<AdoptResult> {
  const {store, group, owner, dryRun} = options
  const images = await store.listGroupImages(group)
  const {legacy} = sortByOwner(images, owner)
  const result: AdoptResult = {group, project: owner.project, dryRun, adopted: legacy, alreadyOurs: []}
  if (options.imageIds !== undefined) {
    const byId = new Map(images.map((i) => [i.id, i]))
    const refused: string[] = []
    const adopted: GroupImage[] = []
    for (const id of new Set(options.imageIds)) {
      const image = byId.get(id)
      const ownership = image ? ownershipOf(image.tags, owner) : undefined
      if (!image) refused.push(`${id}: not an image of group ${group} here (no muster:group=${group} tag, deregistered, or in another region)`)
      else if (ownership === 'other') {
        const theirs = {project: image.tags[TAG_PROJECT] ?? '?', environment: image.tags[TAG_ENVIRONMENT]}
        refused.push(`${id}: belongs to ${ownerText(theirs)}, not ${theirs.environment === undefined && owner.environment === undefined ? owner.project : ownerText(owner)}`)
      }
      else if (ownership === 'ours') result.alreadyOurs.push(id)
      else adopted.push(image)
    }
    if (refused.length > 0) {
      throw new UserError(`cannot adopt ${refused.length === 1 ? 'an image' : `${refused.length} images`} for project ${owner.project}, so none was tagged:\n  ${refused.join('\n  ')}`, {
        hint: `List the legacy images of the group with: muster packer:adopt ${group} --dry-run`,
      })
    }
    result.adopted = adopted.sort(compareNewestFirst)
  }
  if (!dryRun) await store.tagImages(result.adopted.map((i) => i.id), ownerTags(owner))
  return result
}

/** "project muster", or "project muster, environment staging". */
function ownerText(owner: ImageOwner): string {
  return `project ${owner.project}${owner.environment === undefined ? '' : `, environment ${owner.environment}`}`
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
