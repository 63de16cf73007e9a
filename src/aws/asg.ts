// Auto Scaling look-ups that are not Pulumi resources: which ASGs carry a group's tag, so that
// autoscale:run can refuse to start a second fleet beside one made outside muster's stack.
import {AutoScalingClient, paginateDescribeAutoScalingGroups} from '@aws-sdk/client-auto-scaling'

import {TAG_ENVIRONMENT, TAG_GROUP_PLAIN} from '../lib/tags.js'
import {aws} from './errors.js'

/** The tag whose value names the Pulumi stack that manages an ASG, unless the caller names another. */
export const DEFAULT_STACK_TAG = 'pulumi:stack'

export interface GroupAsg {
  name: string
  arn: string | undefined
  /** Every tag of the ASG. */
  tags: Record<string, string>
  /** The stack tag's value; undefined when the ASG does not carry it (made outside a stack). */
  stack: string | undefined
  /** Desired capacity, and the instances InService and Healthy now (what muster status shows). */
  desired: number
  inService: number
}

export interface AsgLookup {
  /** ASGs tagged group=GROUP. */
  findGroupAsgs(group: string): Promise<GroupAsg[]>
}

export interface AsgLookupOptions {
  region: string
  /** Tag key that names the managing stack (default pulumi:stack). */
  stackTag?: string
}

export function createAsgLookup(options: AsgLookupOptions): AsgLookup & {close(): void} {
  const client = new AutoScalingClient({region: options.region})
  const stackTag = options.stackTag ?? DEFAULT_STACK_TAG
  return {
    async findGroupAsgs(group) {
      return aws(`looking for Auto Scaling groups tagged ${TAG_GROUP_PLAIN}=${group} in ${options.region}`, async () => {
        const found: GroupAsg[] = []
        const pages = paginateDescribeAutoScalingGroups({client, pageSize: 100}, {Filters: [{Name: `tag:${TAG_GROUP_PLAIN}`, Values: [group]}]})
        for await (const page of pages) {
          for (const asg of page.AutoScalingGroups ?? []) {
            const tags = Object.fromEntries((asg.Tags ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : [])))
            // The server-side filter is trusted for speed, checked here for exactness.
            if (tags[TAG_GROUP_PLAIN] !== group) continue
            const inService = (asg.Instances ?? []).filter((i) => i.LifecycleState === 'InService' && i.HealthStatus === 'Healthy').length
            found.push({name: asg.AutoScalingGroupName ?? '', arn: asg.AutoScalingGroupARN, tags, stack: tags[stackTag], desired: asg.DesiredCapacity ?? 0, inService})
          }
        }
        return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      })
    },
    close() {
      client.destroy()
    },
  }
}

/** One-shot form for a verb: the ASGs tagged for the group in its region. */
export async function findGroupAsgs(region: string, group: string, options: {stackTag?: string} = {}): Promise<GroupAsg[]> {
  const lookup = createAsgLookup({region, ...options})
  try {
    return await lookup.findGroupAsgs(group)
  } finally {
    lookup.close()
  }
}

/**
 * The ASGs of one environment (muster:environment=ENV), or, for a project without environments,
 * those with no environment tag: one environment's fleet is never another's, nor a no-environment
 * project's.
 */
export function ofEnvironment<T extends {tags: Record<string, string>}>(asgs: readonly T[], environment: string | undefined): T[] {
  return asgs.filter((asg) => asg.tags[TAG_ENVIRONMENT] === environment)
}
