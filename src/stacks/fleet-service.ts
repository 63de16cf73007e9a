// The verbs that run machines: autoscale:run, autoscale:update (rolling or blue-green) and
// instance:create. Each records its intent and updates only its part through applyParts.
import {DescribeAvailabilityZonesCommand, EC2Client} from '@aws-sdk/client-ec2'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {createAsgHealth, waitInService, type AsgHealth} from '../aws/asg-health.js'
import {findGroupAsgs, type GroupAsg} from '../aws/asg.js'
import {aws} from '../aws/errors.js'
import {openSshPublicKeyFromPem} from '../aws/keys.js'
import {instanceDnaPath, renderDna} from '../artifacts/dna.js'
import {atomicWriteSync} from '../lib/atomic-write.js'
import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {type Group, requireAutoscale, requireGroup} from '../nodes/model.js'
import type {Intent} from './intent.js'
import {applyParts, type ApplyResult, readStackOutputs, selectStackGroups, type StackIO} from './service.js'

export interface FleetVerbOptions {
  cwd: string
  nodesPath?: string | undefined
  groups?: string[] | undefined
  yes: boolean
  previewOnly: boolean
  parallel?: number | undefined
}

/** A refusal for verbs that need an Auto Scaling group (the check lives with the model). */
export function refuseNoAutoscale(group: Group): void {
  requireAutoscale(group)
}

const autoscaled = (g: Group): boolean => g.autoscale !== false

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
export async function autoscaleRun(options: FleetVerbOptions, io: StackIO, deps: AutoscaleRunDeps = {}): Promise<ApplyResult> {
  const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath})
  const find = deps.findAsgs ?? findGroupAsgs
  const selected = selectStackGroups(nodes, options.groups, autoscaled, refuseNoAutoscale)
  const names = selected.map((g) => g.name)
  for (const group of selected) {
    const found = await find(group.region, group.name)
    const managed = await (deps.managedAsgs ?? (async (g: string) => asgNamesOf(await readStackOutputs({cwd: options.cwd, group: g}))))(group.name)
    const strangers = foreignAsgs(found, managed)
    if (strangers.length > 0) {
      throw new UserError(`an Auto Scaling group tagged group=${group.name} already exists outside muster's stack: ${strangers.map((a) => a.name).join(', ')}`, {
        hint: `Delete it, or bring it into the stack with "pulumi import" (stack ${group.name}), then run autoscale:run again.`,
      })
    }
  }
  return applyParts(
    {
      cwd: options.cwd,
      nodesPath: options.nodesPath,
      groups: names,
      check: refuseNoAutoscale,
      change: (intent) => ({...intent, fleet: true}),
      parts: ['fleet'],
      yes: options.yes,
      previewOnly: options.previewOnly,
      parallel: options.parallel,
    },
    io,
  )
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
export async function autoscaleUpdate(options: FleetVerbOptions & {strategy: UpdateStrategy}, io: StackIO, deps: AutoscaleUpdateDeps = {}): Promise<ApplyResult> {
  const base = {cwd: options.cwd, nodesPath: options.nodesPath, check: refuseNoAutoscale, parts: ['fleet' as const], parallel: options.parallel}
  if (options.strategy === 'rolling') {
    return applyParts({...base, groups: options.groups, applies: autoscaled, change: (intent) => ({...intent, fleet: true}), yes: options.yes, previewOnly: options.previewOnly}, io)
  }
  const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath})
  const selected = selectStackGroups(nodes, options.groups, autoscaled, refuseNoAutoscale)
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  let last: ApplyResult | undefined
  // One group at a time: a blue-green update doubles a fleet for a while.
  for (const group of selected) {
    const name = group.name
    const timeout = group.autoscale === false ? 0 : group.autoscale.timeout
    let next = 0
    const grown = await applyParts(
      {
        ...base,
        groups: [name],
        change: (intent) => {
          const steps = blueGreenSteps(intent)
          next = steps.next
          return {...intent, fleet: true, generations: steps.grow}
        },
        yes: options.yes,
        previewOnly: options.previewOnly,
      },
      io,
    )
    if (options.previewOnly) {
      last = grown
      continue
    }
    const outputs = grown.groups[0]?.outputs ?? {}
    const newAsg = asgNamesOf(outputs).find((n) => n.endsWith(`-g${next}`)) ?? String(outputs.asgName ?? '')
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
    last = await applyParts({...base, groups: [name], change: (intent) => ({...intent, fleet: true, generations: blueGreenSteps({...intent, generations: [next - 1]}).shrink}), yes: true, previewOnly: false}, io)
  }
  if (!last) throw new UserError('no group to update', {hint: 'Name a group with autoscale set.'})
  return last
}

export interface InstanceCreateOptions {
  cwd: string
  nodesPath?: string | undefined
  group: string
  name: string
  keyPath?: string | undefined
  zone?: string | undefined
  yes: boolean
  previewOnly: boolean
}

export interface InstanceCreateDeps {
  zones?: (region: string) => Promise<string[]>
  random?: () => number
}

export async function regionZones(region: string): Promise<string[]> {
  const client = new EC2Client({region})
  try {
    return await aws(`listing the availability zones of ${region}`, async () => {
      const out = await client.send(new DescribeAvailabilityZonesCommand({Filters: [{Name: 'state', Values: ['available']}]}))
      return (out.AvailabilityZones ?? []).flatMap((z) => (z.ZoneName ? [z.ZoneName] : [])).sort()
    })
  } finally {
    client.destroy()
  }
}

export interface InstanceCreateResult extends ApplyResult {
  dnaFiles: string[]
}

/**
 * The zone of a new instance: the requested one (refused when the region lists zones and it is not
 * among them), else one of `zones` picked with `random` (a number in [0, 1)).
 */
export function chooseZone(region: string, zones: readonly string[], requested: string | undefined, random: () => number): string {
  if (requested !== undefined) {
    if (zones.length > 0 && !zones.includes(requested)) {
      throw new UserError(`zone ${requested} is not an available zone of ${region}`, {hint: `Zones: ${zones.join(', ')}; or leave --zone out for a random one.`})
    }
    return requested
  }
  if (zones.length === 0) throw new UserError(`${region} reports no available zone`, {hint: 'Pass --zone.'})
  return zones[Math.min(zones.length - 1, Math.floor(random() * zones.length))] as string
}

/** instance:create: record a one-off instance in the group's stack, launch it, write its dna. */
export async function instanceCreate(options: InstanceCreateOptions, io: StackIO, deps: InstanceCreateDeps = {}): Promise<InstanceCreateResult> {
  const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath})
  const group = requireGroup(nodes, options.group)
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(options.name)) {
    throw new UserError(`instance name "${options.name}" is not usable`, {hint: 'Use letters, digits, "_" and "-" (at most 64).'})
  }
  const zones = await (deps.zones ?? regionZones)(group.region)
  const zone = chooseZone(group.region, zones, options.zone, deps.random ?? Math.random)
  let publicKey: string | undefined
  if (options.keyPath) {
    const path = join(options.cwd, options.keyPath)
    if (!existsSync(options.keyPath) && !existsSync(path)) throw new UserError(`key file ${options.keyPath} does not exist`, {hint: 'Give the path of your PEM private key (or its .pub).'})
    const {readFileSync} = await import('node:fs')
    publicKey = openSshPublicKeyFromPem(readFileSync(existsSync(options.keyPath) ? options.keyPath : path, 'utf8'))
  }
  const result = await applyParts(
    {
      cwd: options.cwd,
      nodesPath: options.nodesPath,
      groups: [group.name],
      change: (intent) => {
        if (intent.instances.some((i) => i.name === options.name)) {
          throw new UserError(`group ${group.name} already has an instance named ${options.name}`, {hint: 'Names are unique within a group; pick another --name.'})
        }
        return {...intent, instances: [...intent.instances, {name: options.name, zone, ...(publicKey ? {publicKey} : {})}]}
      },
      parts: ['instances'],
      yes: options.yes,
      previewOnly: options.previewOnly,
    },
    io,
  )
  const dnaFiles: string[] = []
  const instances = result.groups[0]?.outputs?.instances
  if (Array.isArray(instances)) {
    for (const instance of instances as Array<{name?: string; id?: string}>) {
      if (!instance.id) continue
      const path = instanceDnaPath(group.name, instance.id)
      atomicWriteSync(join(options.cwd, path), renderDna(group, `${group.name}-${instance.id}`))
      dnaFiles.push(path)
    }
  }
  return {...result, dnaFiles}
}
