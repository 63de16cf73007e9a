// haproxy fed by the registry, the pure half: from the services this node depends on and where
// they run, the model the template is rendered with; the rendering (mustache, logic-less, the
// template is the user's); and what a change needs: a reload when the structure changed
// (backends, frontends, checks, the number of slots, the template), or only runtime API commands
// when just servers of existing backends came, went or were re-weighted.
//
// Each backend has a fixed number of server slots, as haproxy's server-template reserves them:
// s1…sN, a live server in a slot of its own that it keeps while it stays, the free slots
// `disabled`. The rendered file lists every slot with its current server, so a restart (or a
// reload for another reason) gives the state the runtime API made; server-template itself would
// leave the addresses out of the file.
import Mustache from 'mustache'

import type {ServiceRecord} from '../registry/records.js'

/** What the nodes file says about a service this node depends on. */
export interface DependencySpec {
  name: string
  /** The service's port: the local frontend listens on 127.0.0.1 at it. */
  port: number | undefined
  /** An HTTP path (checked with option httpchk) or a command (haproxy then checks TCP only). */
  healthCheck: string | undefined
}

export interface HaproxyServerSlot {
  slot: string
  address: string
  port: number
  weight: number
  live: boolean
}

export interface HaproxyBackend {
  name: string
  frontend_port: number
  /** The HTTP path for option httpchk, or empty for a TCP check. */
  http_check: string
  slots: number
  servers: HaproxyServerSlot[]
}

export interface HaproxyModel {
  node: string
  group: string
  services: HaproxyBackend[]
  /** Dependencies left out, and why (no port known). */
  skipped: string[]
}

/** The placeholder of a free slot: never reachable, never checked (the slot is disabled). */
export const FREE_ADDRESS = '127.0.0.1'
export const FREE_PORT = 1
const MIN_SLOTS = 8

/** Slots for n servers: at least 8, and twice the servers rounded up to a power of two. */
export function slotsFor(servers: number): number {
  let slots = MIN_SLOTS
  while (slots < servers * 2) slots *= 2
  return slots
}

/** A path haproxy's `option httpchk GET PATH` takes as one token. */
export function httpCheckPath(check: string | undefined): string {
  return check !== undefined && /^\/[\x21-\x7e]{0,1023}$/.test(check) ? check : ''
}

/** Which slot each node holds, per service: carried from one model to the next so servers keep their slot. */
export type SlotMap = ReadonlyMap<string, ReadonlyMap<string, number>>

export function buildModel(input: {
  node: string
  group: string
  dependencies: readonly DependencySpec[]
  where: (service: string) => readonly ServiceRecord[]
  previous: HaproxyModel | undefined
  slots: SlotMap
}): {model: HaproxyModel; slots: Map<string, Map<string, number>>} {
  const services: HaproxyBackend[] = []
  const skipped: string[] = []
  const nextSlots = new Map<string, Map<string, number>>()
  for (const dep of [...input.dependencies].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const records = input.where(dep.name).filter((r) => r.port !== undefined)
    const frontend = dep.port ?? records[0]?.port
    if (frontend === undefined) {
      skipped.push(dep.name)
      continue
    }
    const before = input.previous?.services.find((s) => s.name === dep.name)
    // The slot count only grows while the backend exists, so servers coming and going never force a reload.
    const count = Math.max(before?.slots ?? 0, slotsFor(records.length))
    const held = new Map<string, number>()
    const old = input.slots.get(dep.name) ?? new Map<string, number>()
    const taken = new Set<number>()
    for (const r of records) {
      const slot = old.get(r.node)
      if (slot !== undefined && slot < count && !taken.has(slot)) {
        held.set(r.node, slot)
        taken.add(slot)
      }
    }
    for (const r of records) {
      if (held.has(r.node)) continue
      let slot = 0
      while (taken.has(slot)) slot++
      held.set(r.node, slot)
      taken.add(slot)
    }
    const bySlot = new Map([...held].map(([node, slot]) => [slot, records.find((r) => r.node === node) as ServiceRecord]))
    const servers: HaproxyServerSlot[] = []
    for (let i = 0; i < count; i++) {
      const r = bySlot.get(i)
      servers.push(r ? {slot: `s${i + 1}`, address: r.address, port: r.port as number, weight: 100, live: true} : {slot: `s${i + 1}`, address: FREE_ADDRESS, port: FREE_PORT, weight: 100, live: false})
    }
    nextSlots.set(dep.name, held)
    services.push({name: dep.name, frontend_port: frontend, http_check: httpCheckPath(dep.healthCheck), slots: count, servers})
  }
  return {model: {node: input.node, group: input.group, services, skipped}, slots: nextSlots}
}

/** Renders the user's template. Values are checked data (names, addresses, ports), so nothing is escaped. */
export function renderHaproxy(template: string, model: HaproxyModel): string {
  return Mustache.render(template, model, {}, {escape: (text: string) => text})
}

/** The parts of a model that a running haproxy cannot change without a reload. */
function structure(model: HaproxyModel): string {
  return JSON.stringify(model.services.map((s) => [s.name, s.frontend_port, s.http_check, s.slots]))
}

export type HaproxyChange = {kind: 'none'} | {kind: 'reload'} | {kind: 'runtime'; commands: string[]}

/** What it takes to go from one model (and template) to the next. */
export function planChange(before: {model: HaproxyModel; template: string} | undefined, after: {model: HaproxyModel; template: string}): HaproxyChange {
  if (!before || before.template !== after.template || structure(before.model) !== structure(after.model)) return {kind: 'reload'}
  const commands: string[] = []
  for (const backend of after.model.services) {
    const old = before.model.services.find((s) => s.name === backend.name) as HaproxyBackend
    backend.servers.forEach((server, i) => {
      const was = old.servers[i] as HaproxyServerSlot
      const id = `${backend.name}/${server.slot}`
      if (!server.live) {
        if (was.live) commands.push(`set server ${id} state maint`)
        return
      }
      if (!was.live || was.address !== server.address || was.port !== server.port) {
        // Out of rotation while it moves, then in: a request never reaches half an update.
        if (was.live) commands.push(`set server ${id} state maint`)
        commands.push(`set server ${id} addr ${server.address} port ${server.port}`)
        commands.push(`set server ${id} weight ${server.weight}`)
        commands.push(`set server ${id} state ready`)
      } else if (was.weight !== server.weight) {
        commands.push(`set server ${id} weight ${server.weight}`)
      }
    })
  }
  return commands.length === 0 ? {kind: 'none'} : {kind: 'runtime', commands}
}
