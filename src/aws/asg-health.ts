// Waiting for an Auto Scaling group's instances to be in service: the health signal of a
// blue-green update until the agents' registrations in etcd take that role.
import {AutoScalingClient, DescribeAutoScalingGroupsCommand} from '@aws-sdk/client-auto-scaling'

import {UserError} from '../errors.js'
import {aws} from './errors.js'

export interface AsgHealth {
  /** How many of the ASG's instances are InService and Healthy, and how many it wants. */
  inService(asgName: string): Promise<{healthy: number; desired: number}>
}

/** The instance ids of an ASG (the agents' node ids on EC2, see src/agent/identity.ts). */
export interface AsgInstances {
  /** Ids of the ASG's instances that are InService; with `all`, every instance it has, whatever its state. */
  instanceIds(asgName: string, options?: {all?: boolean}): Promise<string[]>
}

export function createAsgHealth(region: string): AsgHealth & AsgInstances & {close(): void} {
  const client = new AutoScalingClient({region})
  return {
    async inService(asgName) {
      return aws(`reading Auto Scaling group ${asgName}`, async () => {
        const out = await client.send(new DescribeAutoScalingGroupsCommand({AutoScalingGroupNames: [asgName]}))
        const asg = out.AutoScalingGroups?.[0]
        if (!asg) throw new UserError(`Auto Scaling group ${asgName} does not exist`, {hint: 'Run muster up GROUP to converge the stack.'})
        const healthy = (asg.Instances ?? []).filter((i) => i.LifecycleState === 'InService' && i.HealthStatus === 'Healthy').length
        return {healthy, desired: asg.DesiredCapacity ?? 0}
      })
    },
    async instanceIds(asgName, options = {}) {
      return aws(`reading Auto Scaling group ${asgName}`, async () => {
        const out = await client.send(new DescribeAutoScalingGroupsCommand({AutoScalingGroupNames: [asgName]}))
        const instances = out.AutoScalingGroups?.[0]?.Instances ?? []
        return instances.filter((i) => options.all === true || i.LifecycleState === 'InService').flatMap((i) => (i.InstanceId ? [i.InstanceId] : []))
      })
    },
    close: () => client.destroy(),
  }
}

/** Polls until every wanted instance is in service; a user error after `timeoutMs`. */
export async function waitInService(
  health: AsgHealth,
  asgName: string,
  options: {timeoutMs: number; intervalMs?: number; sleep?: (ms: number) => Promise<void>; now?: () => number; onPoll?: (healthy: number, desired: number) => void},
): Promise<void> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const now = options.now ?? Date.now
  const deadline = now() + options.timeoutMs
  for (;;) {
    const {healthy, desired} = await health.inService(asgName)
    options.onPoll?.(healthy, desired)
    if (healthy >= desired) return
    if (now() >= deadline) {
      throw new UserError(`${asgName}: only ${healthy} of ${desired} instances in service after ${Math.round(options.timeoutMs / 1000)} s`, {
        hint: 'The old Auto Scaling group is still serving. Look at the new instances (console output, chef-solo log), fix, and run the update again; or retire the new generation with muster up GROUP after editing stacks/Pulumi.GROUP.yaml.',
      })
    }
    await sleep(options.intervalMs ?? 10_000)
  }
}
