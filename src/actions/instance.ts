// instance:create: record a one-off instance in the group's stack, launch it, write its dna.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {instanceDnaPath, renderDna} from '../artifacts/dna.js'
import {refuseSymlinkOutOfProject} from '../artifacts/writer.js'
import {openSshPublicKeyFromPem} from '../aws/keys.js'
import {regionZones} from '../aws/zones.js'
import {UserError} from '../errors.js'
import {atomicWriteSync} from '../lib/atomic-write.js'
import {INSTANCE_NAME_RULE, isUsableInstanceName} from '../lib/tags.js'
import type {Group} from '../nodes/model.js'
import type {Intent} from '../stacks/intent.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface InstanceCreateOptions extends ProjectOptions {
  group: string
  name: string
  keyPath?: string | undefined
  zone?: string | undefined
  previewOnly: boolean
}

export interface InstanceCreateDeps {
  zones?: (region: string) => Promise<string[]>
  random?: () => number
}

export interface InstanceCreateResult extends ApplyResult {
  dnaFiles: string[]
}

/**
 * The zone of a new instance: the requested one (refused when the region lists zones and it is not
 * among them), else one of `zones` picked with `random` (a number in [0, 1)), whatever order the
 * region lists them in.
 */
export function chooseZone(region: string, zones: readonly string[], requested: string | undefined, random: () => number): string {
  if (requested !== undefined) {
    if (zones.length > 0 && !zones.includes(requested)) {
      throw new UserError(`zone ${requested} is not an available zone of ${region}`, {hint: `Zones: ${zones.join(', ')}; or leave --zone out for a random one.`})
    }
    return requested
  }
  const sorted = [...new Set(zones)].sort()
  if (sorted.length === 0) throw new UserError(`${region} reports no available zone`, {hint: 'Pass --zone.'})
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(random() * sorted.length)))] as string
}

function readPublicKey(cwd: string, keyPath: string | undefined): string | undefined {
  if (!keyPath) return undefined
  const found = [keyPath, join(cwd, keyPath)].find((path) => existsSync(path))
  if (!found) throw new UserError(`key file ${keyPath} does not exist`, {hint: 'Give the path of your PEM private key (or its .pub).'})
  return openSshPublicKeyFromPem(readFileSync(found, 'utf8'))
}

export async function instanceCreate(options: InstanceCreateOptions, io: IoHost, deps: InstanceCreateDeps = {}): Promise<InstanceCreateResult> {
  const project = new Project(options, io)
  const group = project.group(options.group, {what: 'instances', done: 'nothing was launched'})
  if (!isUsableInstanceName(options.name)) {
    throw new UserError(`instance name "${options.name}" is not usable`, {hint: INSTANCE_NAME_RULE})
  }
  // dna/instances/GROUP-ID.json is written after the launch: refuse a symlinked way out before it.
  refuseSymlinkOutOfProject(options.cwd, instanceDnaPath(group.name, 'i-0'), 'muster writes no dna through it, so nothing was launched or written')
  const zones = await (deps.zones ?? regionZones)(group.region)
  const zone = chooseZone(group.region, zones, options.zone, deps.random ?? Math.random)
  const publicKey = readPublicKey(options.cwd, options.keyPath)
  const addInstance = (intent: Intent): Intent => {
    if (intent.instances.some((i) => i.name === options.name)) {
      throw new UserError(`group ${group.name} already has an instance named ${options.name}`, {hint: 'Names are unique within a group; pick another --name.'})
    }
    return {...intent, instances: [...intent.instances, {name: options.name, zone, ...(publicKey ? {publicKey} : {})}]}
  }
  const result = await updateStacks(project, {groups: [group], change: addInstance, parts: ['instances'], previewOnly: options.previewOnly}, io)
  return {...result, dnaFiles: writeInstanceDna(options.cwd, group, result.groups[0]?.outputs?.instances)}
}

function writeInstanceDna(root: string, group: Group, instances: unknown): string[] {
  if (!Array.isArray(instances)) return []
  const written: string[] = []
  for (const instance of instances as Array<{name?: string; id?: string}>) {
    if (!instance.id) continue
    const path = instanceDnaPath(group.name, instance.id)
    refuseSymlinkOutOfProject(root, path, `muster writes no dna through it, so ${path} was not written`)
    atomicWriteSync(join(root, path), renderDna(group, `${group.name}-${instance.id}`))
    written.push(path)
  }
  return written
}
