// autoscale:run and autoscale:update (rolling or blue-green): the fleet part of a group's stack.
import {type AsgHealth, type AsgInstances, createAsgHealth, waitInService} from '../aws/asg-health.js'
import {findGroupAsgs, type GroupAsg, ofEnvironment} from '../aws/asg.js'
import {UserError} from '../errors.js'
import {TAG_ENVIRONMENT} from '../lib/tags.js'
import {stackName} from '../nodes/environments.js'
import {type Group, isAutoscaled, requireAutoscale} from '../nodes/model.js'
import {servicesOf} from '../nodes/services.js'
import type {RegistryTarget} from '../registry/connect-options.js'
import type {RegistryRead} from '../registry/read.js'
import {describeShortfalls, newInstancesReady, retirementOf} from '../registry/readiness.js'
import {openBlueGreenRegistry} from '../registry/retire.js'
import type {Intent} from '../stacks/intent.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'
import {readStackOutputs} from './stack.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface FleetVerbOptions extends ProjectOptions {
  groups?: string[] | undefined
  previewOnly: boolean
}

/** The autoscaled groups named, or every one; a named group without autoscale is refused. */
const selectFleets = (project: Project, names: string[] | undefined): Group[] => project.select(names, isAutoscaled, requireAutoscale, {what: 'Auto Scaling group', done: 'nothing was changed'})

const withFleet = (intent: Intent): Intent => ({...intent, fleet: true})

/** autoscale:update changes a running fleet; starting one is autoscale:run's (which checks for strangers first). */
export function noFleetYet(group: string): UserError {
  return new UserError(`group ${group} has no Auto Scaling group to update: it never ran a fleet`, {
    hint: `Start it with: muster autoscale:run ${group}`,
  })
}

/** The fleet intent an update keeps, refusing a group whose stack records no fleet. */
const updatedFleet = (intent: Intent, group: Group): Intent => {
  if (!intent.fleet) throw noFleetYet(group.name)
  return withFleet(intent)
}

const fleetUpdate = {change: updatedFleet, parts: ['fleet'] as const, refuseMissing: (group: Group) => noFleetYet(group.name)}

/** ASGs tagged for the group that the group's stack does not manage. */
export function foreignAsgs(found: readonly GroupAsg[], managed: readonly string[]): GroupAsg[] {
  return found.filter((asg) => !managed.includes(asg.name))
}

export interface AutoscaleRunDeps {
  /** ASGs tagged group=GROUP in the region (default: the AWS SDK). */
  findAsgs?: (region: string, group: string) => Promise<GroupAsg[]>
  /** Names of the ASGs the group's stack manages (default: its asgNames output). */
  managedAsgs?: (group: string) => Promise<string[]>
}

/** autoscale:run: refuse when an ASG tagged for the group exists outside its stack, then run the fleet part. */
export async function autoscaleRun(options: FleetVerbOptions, io: IoHost, deps: AutoscaleRunDeps = {}): Promise<ApplyResult> {
  const project = new Project(options, io)
  const groups = selectFleets(project, options.groups)
  const find = deps.findAsgs ?? findGroupAsgs
  const managedAsgs = deps.managedAsgs ?? (async (group: string) => asgNamesOf(await readStackOutputs(project, group)))
  for (const group of groups) {
    // Another environment's fleet of the group (or a project without environments') is not a stranger here.
    const strangers = foreignAsgs(ofEnvironment(await find(group.region, group.name), group.environment), await managedAsgs(group.name))
    if (strangers.length > 0) {
      const where = group.environment === undefined ? '' : ` ${TAG_ENVIRONMENT}=${group.environment}`
      throw new UserError(`an Auto Scaling group tagged group=${group.name}${where} already exists outside muster's stack: ${strangers.map((a) => a.name).join(', ')}`, {
        hint: `Delete it, or bring it into the stack with "pulumi import" (stack ${stackName(group)}), then run autoscale:run again.`,
      })
    }
  }
  return updateStacks(project, {groups, change: withFleet, parts: ['fleet'], previewOnly: options.previewOnly}, io)
}

function asgNamesOf(outputs: Record<string, unknown> | undefined): string[] {
  const names = outputs?.asgNames
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : []
}

export type UpdateStrategy = 'rolling' | 'blue-green'

/**
 * The generations a blue-green update goes through: [live] → [live, next] → [next]. Growing only
 * adds: after an interrupted update ([old, new], the new one perhaps never in service) every
 * generation stays until `next` is in service ([old, new, next] → [next]), so the grow step never
 * deletes the generation that may be the only one serving.
 */
export function blueGreenSteps(intent: Intent): {grow: number[]; shrink: number[]; next: number} {
  const live = Math.max(...intent.generations)
  const next = live + 1
  return {grow: [...new Set(intent.generations)].sort((a, b) => a - b).concat(next), shrink: [next], next}
}

/** The registry as a blue-green update uses it: snapshots, and the operator's retire keys. */
export interface BlueGreenRegistry {
  read(): Promise<Pick<RegistryRead, 'nodes' | 'services'>>
  /** Writes retire/NODE for each node (the node's agent deregisters, drains and reports retired). */
  retire(nodes: readonly string[], value: string): Promise<void>
  /** Deletes the retire keys of nodes that are gone. */
  clear(nodes: readonly string[]): Promise<void>
  close(): void
}

export interface AutoscaleUpdateDeps {
  health?: (region: string) => AsgHealth & AsgInstances & {close(): void}
  sleep?: (ms: number) => Promise<void>
  now?: () => number
  /** How long to wait for the new instances (default: 10 minutes plus autoscale.timeout). */
  inServiceTimeoutMs?: (group: Group) => number
  /** How long the old nodes get to deregister and drain (default: 10 minutes plus autoscale.timeout). */
  retireTimeoutMs?: (group: Group) => number
  /** Between registry polls (default 5 s). */
  pollMs?: number
  /** The registry (default: opened from options.registry; none: the InService-only wait). */
  registry?: BlueGreenRegistry
  /** Applies a change of the group's fleet intent to its stack (default: updateStacks; tests inject it). */
  applyFleet?: (group: Group, change: (intent: Intent) => Intent, options: {previewOnly: boolean; first: boolean}) => Promise<ApplyResult>
}

/**
 * autoscale:update. Rolling (default): converge the fleet part; a new launch template version
 * starts the ASG's instance refresh (min healthy 90%, warm-up autoscale.timeout). Blue-green, as
 * the paper describes: a new ASG beside the old, wait until its instances are in service and (with
 * registry settings) every one has registered its group's services, healthy; past
 * autoscale.timeout roll back to the old generations. Then retire the old nodes through the
 * registry (deregister, drain) and only then remove the old ASG.
 */
export async function autoscaleUpdate(options: FleetVerbOptions & {strategy: UpdateStrategy; registry?: RegistryTarget | undefined}, io: IoHost, deps: AutoscaleUpdateDeps = {}): Promise<ApplyResult> {
  const project = new Project(options, io)
  const groups = selectFleets(project, options.groups)
  if (options.strategy === 'rolling') return updateStacks(project, {groups, ...fleetUpdate, previewOnly: options.previewOnly}, io)
  const applyFleet =
    deps.applyFleet ??
    ((group: Group, change: (intent: Intent) => Intent, o: {previewOnly: boolean; first: boolean}) =>
      updateStacks(project, {groups: [group], parts: ['fleet'], change, previewOnly: o.previewOnly, ...(o.first ? {refuseMissing: fleetUpdate.refuseMissing} : {ask: false})}, io))
  const registry = deps.registry ?? (options.registry && !options.previewOnly ? openBlueGreenRegistry(options.registry) : undefined)
  let last: ApplyResult | undefined
  try {
    // A registry that does not answer (or refuses this user) fails before the stack grows, not
    // after, when the new ASG would be left beside the old one.
    if (registry) await registry.read()
    else if (!options.previewOnly && project.nodes.registry) {
      io.progress(`the nodes file names a registry (__base__.registry: ${project.nodes.registry.endpoints.join(', ')}) but this run has no registry settings: give --etcd (or MUSTER_ETCD_ENDPOINTS) to wait for the new nodes' services and drain the old ones`)
    }
    // One group at a time: a blue-green update doubles a fleet for a while.
    for (const group of groups) last = await blueGreen(group, options.previewOnly, io, {...deps, applyFleet, registry})
  } finally {
    registry?.close()
  }
  if (!last) throw new UserError('no group to update', {hint: 'Name a group with autoscale set.'})
  return last
}

type BlueGreenDeps = AutoscaleUpdateDeps & Required<Pick<AutoscaleUpdateDeps, 'applyFleet'>>

async function blueGreen(group: Group, previewOnly: boolean, io: IoHost, deps: BlueGreenDeps): Promise<ApplyResult> {
  const name = group.name
  // The intent before the update: a rollback records exactly it again.
  let before: Intent | undefined
  const grown = await deps.applyFleet(
    group,
    (intent) => {
      before ??= intent
      return {...updatedFleet(intent, group), generations: blueGreenSteps(intent).grow}
    },
    {previewOnly, first: true},
  )
  if (previewOnly) return grown
  const outcome = grown.groups[0]
  // The intent the grow step recorded names the new generation: its highest.
  const next = Math.max(...(outcome?.intent.generations ?? [0]))
  const outputs = outcome?.outputs ?? {}
  const newAsg = asgNamesOf(outputs).find((n) => n.endsWith(`-g${next}`)) ?? String(outputs.asgName ?? '')
  const oldAsgs = asgNamesOf(outputs).filter((n) => n !== newAsg)
  const timeout = requireAutoscale(group).timeout
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const now = deps.now ?? Date.now
  const health = (deps.health ?? createAsgHealth)(group.region)
  const shrink = (): Promise<ApplyResult> => deps.applyFleet(group, (intent) => ({...withFleet(intent), generations: [next]}), {previewOnly: false, first: false})
  try {
    io.progress(`[${name}] waiting for ${newAsg} to be in service…`)
    await waitInService(health, newAsg, {
      timeoutMs: deps.inServiceTimeoutMs?.(group) ?? 600_000 + timeout * 1000,
      sleep,
      now,
      onPoll: (healthy, desired) => io.progress(`[${name}] ${newAsg}: ${healthy}/${desired} in service`),
    })
    const registry = deps.registry
    if (!registry) {
      io.progress(`[${name}] no registry settings (--etcd or MUSTER_ETCD_ENDPOINTS): ${newAsg} counts as ready once in service, without checking its services; the old nodes are not drained through the registry`)
      io.progress(`[${name}] ${newAsg} is in service; keeping the old group ${timeout} s so every node can update`)
      await sleep(timeout * 1000)
      return await shrink()
    }
    const services = servicesOf(group).map((s) => s.name)
    const waitMs = timeout * 1000
    const pollMs = deps.pollMs ?? 5000
    const deadline = now() + waitMs
    io.progress(`[${name}] waiting up to ${timeout} s for every instance of ${newAsg} to register ${services.length > 0 ? services.join(', ') : 'itself (the group runs no service)'} in the registry…`)
    for (;;) {
      const ids = await health.instanceIds(newAsg)
      const state = newInstancesReady(ids, name, services, await registry.read())
      if (state.done) {
        io.progress(`[${name}] ${newAsg}: all ${state.ready.length} instances registered ${services.join(', ') || 'their nodes'}`)
        break
      }
      io.progress(`[${name}] ${newAsg}: ${state.ready.length}/${ids.length} instances ready; waiting for ${describeShortfalls(state.waiting) || 'instances'}`)
      if (now() >= deadline) {
        io.progress(`[${name}] rolling back: removing ${newAsg}, keeping ${oldAsgs.join(', ') || 'the old generations'}`)
        const kept = before as Intent
        await deps.applyFleet(group, () => kept, {previewOnly: false, first: false})
        throw new UserError(
          `[${name}] blue-green update rolled back: after ${timeout} s (autoscale.timeout) ${ids.length === 0 ? `${newAsg} had no instance in service` : `not every instance of ${newAsg} had registered its services: ${describeShortfalls(state.waiting)}`}. ${newAsg} was removed; ${oldAsgs.join(', ') || 'the old generation'} still serves and the stack records generations ${JSON.stringify(kept.generations)} as before.`,
          {hint: 'A service is registered only while its health check passes: look at the new nodes\' agents (their /health shows each check\'s last failure) and chef-solo logs, fix, and run the update again.'},
        )
      }
      await sleep(pollMs)
    }
    // Retire the old nodes: the agents deregister, let their dependents move over (drain) and
    // report retired; only then does the old ASG go. This wait is what the paper's "keep the old
    // group so every node can update" becomes once the agents say when they are done.
    const oldIds = [...new Set((await Promise.all(oldAsgs.map((asg) => health.instanceIds(asg, {all: true})))).flat())].sort()
    if (oldIds.length > 0) {
      await registry.retire(oldIds, JSON.stringify({requestedAt: new Date(now()).toISOString(), by: 'autoscale:update', group: name, replacedBy: newAsg}))
      io.progress(`[${name}] retiring ${oldIds.length} old nodes (${oldIds.join(', ')}): waiting for them to deregister and drain…`)
      const retireMs = deps.retireTimeoutMs?.(group) ?? 600_000 + timeout * 1000
      const retireBy = now() + retireMs
      for (;;) {
        const state = retirementOf(oldIds, await registry.read())
        if (state.done) break
        io.progress(`[${name}] ${state.retired.length}/${oldIds.length} old nodes retired; waiting for ${state.holding.map((h) => `${h.node} (${h.services.length > 0 ? h.services.join(', ') : 'draining'})`).join('; ')}`)
        if (now() >= retireBy) {
          throw new UserError(`[${name}] the old nodes did not retire within ${Math.round(retireMs / 1000)} s: ${state.holding.map((h) => `${h.node} still holds ${h.services.length > 0 ? h.services.join(', ') : 'no service but has not reported retired'}`).join('; ')}. The old Auto Scaling group (${oldAsgs.join(', ')}) was kept; ${newAsg} serves beside it.`, {
            hint: `Look at those nodes' agents (/health, log). Once they have retired, remove the old generation with muster up ${name}${group.environment === undefined ? '' : ` --env ${group.environment}`} after setting generations to [${next}] in stacks/Pulumi.${stackName(group)}.yaml.`,
          })
        }
        await sleep(pollMs)
      }
      io.progress(`[${name}] old nodes retired; removing ${oldAsgs.join(', ')}`)
    }
    const shrunk = await shrink()
    // The instances are gone with their ASG; their retire keys would only confuse a reused id.
    await registry.clear(oldIds).catch((error: Error) => io.progress(`[${name}] could not delete the retire keys (${error.message}); they are harmless`))
    return shrunk
  } finally {
    health.close()
  }
}
