// What packer:retain and packer:clean --dry-run run: the nodes file's groups → one ImageStore per
// group's region → retention. Separate from retention.ts so the planner stays free of files and AWS.
import {loadNodes} from '../nodes/load.js'
import {BASE, bakedGroups as imageGroups, type Group, type NodesFile, requireGroup} from '../nodes/model.js'
import {createImageStore, type ImageStore} from './ec2.js'
import {retireImages, type RetentionResult} from './retention.js'

export interface RetainOptions {
  cwd: string
  nodesPath?: string | undefined
  /** One group; default: every baked group. */
  group?: string | undefined
  keep: number
  dryRun: boolean
  /** Tests pass their own; default: the AWS SDK store for the region. */
  openStore?: (region: string) => ImageStore & {close(): void}
}

/** Runs retention for the selected groups, in parallel; results in nodes-file order. */
export async function retainGroupImages(options: RetainOptions): Promise<RetentionResult[]> {
  const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath})
  const groups = options.group === undefined ? bakedGroups(nodes) : [requireGroup(nodes, options.group)]
  const open = options.openStore ?? ((region: string) => createImageStore({region}))
  return Promise.all(
    groups.map(async (group) => {
      const store = open(group.region)
      try {
        return await retireImages({store, group: group.name, keep: options.keep, dryRun: options.dryRun})
      } finally {
        store.close()
      }
    }),
  )
}

/** The groups packer:clean means without a GROUP: the baked ones, as for their stacks (__base__ only when named). */
export function bakedGroups(nodes: NodesFile): Group[] {
  return imageGroups(nodes).filter((g) => g.name !== BASE)
}
