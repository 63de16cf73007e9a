// What packer:retain and packer:clean --dry-run run: one ImageStore per group's region →
// retention. Separate from retention.ts so the planner stays free of files and AWS; the caller
// names the groups (this module never reads the nodes file).
import {mapBounded} from '../lib/parallel.js'
import type {ImageOwner} from '../lib/tags.js'
import {createImageStore, type ImageStore} from './ec2.js'
import type {ImagesInUse} from './images-in-use.js'
import {retireImages, type RetentionResult} from './retention.js'

export interface RetainOptions {
  /** The groups whose images to retire, with the region each lives in. */
  groups: ReadonlyArray<{name: string; region: string}>
  /** Whose images may go: only the project's own are ever removed. */
  owner: ImageOwner
  keep: number
  dryRun: boolean
  /** Images environments' stacks pin (packer:promote), per group: kept whatever AWS says. */
  pinned?: (group: string) => ImagesInUse
  /** Tests pass their own; default: the AWS SDK store for the region. */
  openStore?: (region: string) => ImageStore & {close(): void}
}

/** Runs retention for the groups, in parallel; results in the groups' order. */
export async function retainGroupImages(options: RetainOptions): Promise<RetentionResult[]> {
  const open = options.openStore ?? ((region: string) => createImageStore({region}))
  return mapBounded(options.groups, Math.max(1, options.groups.length), async (group) => {
    const store = open(group.region)
    try {
      const pinned = options.pinned?.(group.name)
      return await retireImages({store, group: group.name, owner: options.owner, keep: options.keep, dryRun: options.dryRun, ...(pinned ? {pinned} : {})})
    } finally {
      store.close()
    }
  })
}
