// The registry's key layout, in one place. Every key lives under /muster/PROJECT/ so that two
// projects (or, later, environments) sharing one etcd never see each other's services.
//
//   services/SERVICE/NODE   a service a node offers, on the node's lease
//   nodes/NODE              the node itself and its last provision, on the node's lease
//   retire/NODE             operator-written (autoscale:update --strategy blue-green): the node's
//                           agent deregisters its services, drains and reports retired; agents may
//                           not write it (access.ts), and the registry view ignores it
import {UserError} from '../errors.js'

/** Project names, service names and node ids become key segments: no "/" and nothing exotic. */
export const SEGMENT = /^[A-Za-z0-9_.-]{1,128}$/

/** A segment etcd, shells and file names all take literally: SEGMENT, and never "." or "..". */
export function isSegment(value: string): boolean {
  return SEGMENT.test(value) && value !== '.' && value !== '..' && value !== '__proto__'
}

export function checkSegment(what: string, value: string, hint: string): string {
  if (!isSegment(value)) {
    throw new UserError(`${what} ${JSON.stringify(value)} is not usable as a registry key segment`, {
      hint: `${hint} Use 1–128 of A–Z a–z 0–9 _ . - (no "/").`,
    })
  }
  return value
}

export function projectPrefix(project: string): string {
  return `/muster/${project}/`
}

export function servicesPrefix(project: string): string {
  return `${projectPrefix(project)}services/`
}

export function nodesPrefix(project: string): string {
  return `${projectPrefix(project)}nodes/`
}

export function retirePrefix(project: string): string {
  return `${projectPrefix(project)}retire/`
}

export function retireKey(project: string, node: string): string {
  return `${retirePrefix(project)}${node}`
}

export function serviceKey(project: string, service: string, node: string): string {
  return `${servicesPrefix(project)}${service}/${node}`
}

export function nodeKey(project: string, node: string): string {
  return `${nodesPrefix(project)}${node}`
}

export type ParsedKey = {kind: 'service'; service: string; node: string} | {kind: 'node'; node: string}

/**
 * What a key under the project's prefix names, or undefined for keys muster does not own (or that
 * are malformed: the registry is writable from every node, so nothing in it is trusted blindly).
 */
export function parseKey(project: string, key: string): ParsedKey | undefined {
  const prefix = projectPrefix(project)
  if (!key.startsWith(prefix)) return undefined
  const parts = key.slice(prefix.length).split('/')
  if (parts[0] === 'services' && parts.length === 3) {
    const [, service, node] = parts as [string, string, string]
    if (isSegment(service) && isSegment(node)) return {kind: 'service', service, node}
    return undefined
  }
  if (parts[0] === 'nodes' && parts.length === 2) {
    const node = parts[1] as string
    if (isSegment(node)) return {kind: 'node', node}
  }
  return undefined
}
