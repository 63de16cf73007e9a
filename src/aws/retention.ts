// AMI retention: keep a group's newest N images and anything still in use, deregister the rest
// and delete their snapshots. planRetention is pure; retireImages and deleteAllImages run a plan
// against an ImageStore.
import {UserError} from '../errors.js'
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
}

export interface RetireOptions {
  store: ImageStore
  group: string
  keep: number
  dryRun: boolean
}

export async function retireImages(options: RetireOptions): Promise<RetentionResult> {
  const {store, group, keep, dryRun} = options
  const images = await store.listGroupImages(group)
  const inUse = await store.imagesInUse(images.map((i) => i.id))
  const plan = planRetention(images, inUse, keep)
  return apply(store, plan, {group, keep, dryRun})
}

export interface DeleteAllOptions {
  store: ImageStore
  group: string
  /** Deregister images that are in use too. */
  force: boolean
  dryRun: boolean
}

/** Every image of the group goes (packer:delete); refuses while one is in use, unless forced. */
export async function deleteAllImages(options: DeleteAllOptions): Promise<RetentionResult> {
  const {store, group, force, dryRun} = options
  const images = [...(await store.listGroupImages(group))].sort(compareNewestFirst)
  const inUse = await store.imagesInUse(images.map((i) => i.id))
  const used = images.filter((i) => (inUse.get(i.id)?.length ?? 0) > 0)
  if (used.length > 0 && !force) {
    const lines = used.map((i) => `  ${i.id} ${i.name}: used by ${(inUse.get(i.id) ?? []).map((u) => u.description).join(', ')}`)
    throw new UserError(`${used.length} of the ${images.length} images of group ${group} ${used.length === 1 ? 'is' : 'are'} in use, so none was deregistered:\n${lines.join('\n')}`, {
      hint: 'Stop what uses them first (point the launch templates and Auto Scaling groups elsewhere, terminate the instances), or pass --force: running instances keep running, but nothing can launch from a deregistered image again.',
    })
  }
  const planned = images.map((image): PlannedImage => ({...image, snapshotIds: [...image.snapshotIds], action: 'remove', reason: 'delete', usedBy: [...(inUse.get(image.id) ?? [])]}))
  return apply(store, toPlan(planned), {group, keep: undefined, dryRun})
}

async function apply(store: ImageStore, plan: RetentionPlan, meta: {group: string; keep: number | undefined; dryRun: boolean}): Promise<RetentionResult> {
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

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
