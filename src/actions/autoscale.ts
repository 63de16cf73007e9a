// autoscale:run and autoscale:update (rolling or blue-green): the fleet part of a group's stack.
import {createAsgHealth, waitInService, type AsgHealth} from '../aws/asg-health.js'
import {findGroupAsgs, type GroupAsg} from '../aws/asg.js'
import {UserError} from '../errors.js'
import {type Group, isAutoscaled, requireAutoscale} from '../nodes/model.js'
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
    const strangers = foreignAsgs(await find(group.region, group.name), await managedAsgs(group.name))
    if (strangers.length > 0) {
      throw new UserError(`an Auto Scaling group tagged group=${group.name} already exists outside muster's stack: ${strangers.map((a) => a.name).join(', ')}`, {
        hint: `Delete it, or bring it into the stack with "pulumi import" (stack ${group.name}), then run autoscale:run again.`,
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

export interface AutoscaleUpdateDeps {
  health?: (region: string) => AsgHealth & {close(): void}
  sleep?: (ms: number) => Promise<void>
  /** How long to wait for the new instances (default: 10 minutes plus autoscale.timeout). */
  inServiceTimeoutMs?: (group: Group) => number
}

/**
 * autoscale:update. Rolling (default): converge the fleet part; a new launch template version
 * starts the ASG's instance refresh (min healthy 90%, warm-up autoscale.timeout). Blue-green, as
 * the paper describes: a new ASG beside the old, wait until its instances are in service, keep
 * the old one for autoscale.timeout seconds so every other node has a chance to update, retire it.
 */
export async function autoscaleUpdate(options: FleetVerbOptions & {strategy: UpdateStrategy}, io: IoHost, deps: AutoscaleUpdateDeps = {}): Promise<ApplyResult> {
  const project = new Project(options, io)
  const groups = selectFleets(project, options.groups)
  if (options.strategy === 'rolling') return updateStacks(project, {groups, ...fleetUpdate, previewOnly: options.previewOnly}, io)
  let last: ApplyResult | undefined
  // One group at a time: a blue-green update doubles a fleet for a while.
  for (const group of groups) last = await blueGreen(project, group, options.previewOnly, io, deps)
  if (!last) throw new UserError('no group to update', {hint: 'Name a group with autoscale set.'})
  return last
}

async function blueGreen(project: Project, group: Group, previewOnly: boolean, io: IoHost, deps: AutoscaleUpdateDeps): Promise<ApplyResult> {
  const name = group.name
  const grown = await updateStacks(project, {groups: [group], ...fleetUpdate, change: (intent) => ({...updatedFleet(intent, group), generations: blueGreenSteps(intent).grow}), previewOnly}, io)
  if (previewOnly) return grown
  const outcome = grown.groups[0]
  // The intent the grow step recorded names the new generation: its highest.
  const next = Math.max(...(outcome?.intent.generations ?? [0]))
  const outputs = outcome?.outputs ?? {}
  const newAsg = asgNamesOf(outputs).find((n) => n.endsWith(`-g${next}`)) ?? String(outputs.asgName ?? '')
  const timeout = requireAutoscale(group).timeout
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const health = (deps.health ?? createAsgHealth)(group.region)
  try {
    io.progress(`[${name}] waiting for ${newAsg} to be in service…`)
    await waitInService(health, newAsg, {
      timeoutMs: deps.inServiceTimeoutMs?.(group) ?? 600_000 + timeout * 1000,
      sleep,
      onPoll: (healthy, desired) => io.progress(`[${name}] ${newAsg}: ${healthy}/${desired} in service`),
    })
  } finally {
    health.close()
  }
  io.progress(`[${name}] ${newAsg} is in service; keeping the old group ${timeout} s so every node can update`)
  await sleep(timeout * 1000)
  return updateStacks(project, {groups: [group], change: (intent) => ({...withFleet(intent), generations: [next]}), parts: ['fleet'], previewOnly: false, ask: false}, io)
}
