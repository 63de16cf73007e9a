// A group's release manifest from the resolved nodes model (pure): the role and dna the artifact
// generators give (the same as roles/GROUP.json and dna/asg/GROUP.json), the agent's settings
// (services, dependencies) and the cookbooks tarball's address. Its bytes are canonical JSON (keys
// sorted at every level, fixed indent), so the same inputs always give the same sha256: the digest
// is the release's name, and an unchanged release is never uploaded twice.
import {createHash} from 'node:crypto'

import {buildDna} from '../artifacts/dna.js'
import {buildRole} from '../artifacts/role.js'
import {buildChefEnvironment} from '../artifacts/chef-environment.js'
import type {Group, NodesFile} from '../nodes/model.js'
import {dependenciesOf, servicesOf} from '../nodes/services.js'
import type {ReleaseManifest} from '../registry/deploys.js'

/** Where releases live in the bucket (see src/registry/deploys.ts). */
export const releasesPrefix = (project: string): string => `muster/${project}/`
export const manifestKey = (project: string, group: string, digest: string): string => `${releasesPrefix(project)}releases/${group}/${digest}.json`
export const cookbooksKey = (project: string, sha256: string): string => `${releasesPrefix(project)}cookbooks/${sha256}.tgz`

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export interface CookbooksRef {
  url: string
  sha256: string
  bytes: number
}

/** Every environment's Chef environment, by name: what a release carries (undefined without environments). */
export function releaseEnvironments(nodes: Pick<NodesFile, 'environments'>): Record<string, Record<string, unknown>> | undefined {
  if (nodes.environments.size === 0) return undefined
  return Object.fromEntries([...nodes.environments.values()].map((e) => [e.name, {...buildChefEnvironment(e)}]))
}

export function buildManifest(project: string, group: Group, cookbooks: CookbooksRef | null, createdAt: string, environments?: Record<string, Record<string, unknown>>): ReleaseManifest {
  return {
    format: 1,
    project,
    group: group.name,
    role: {...buildRole(group)},
    dna: {...buildDna(group)},
    agent: {
      services: servicesOf(group).map((s) => ({name: s.name, cookbook: s.cookbook, ...(s.port === undefined ? {} : {port: s.port}), ...(s.health_check === undefined ? {} : {health_check: s.health_check})})),
      dependsOn: dependenciesOf(group),
    },
    cookbooks,
    ...(environments === undefined ? {} : {environments}),
    createdAt,
  }
}

/** JSON with every object's keys sorted, two-space indent, trailing newline: one text per value. */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort)
    if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>
      return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, sort(o[k])]))
    }
    return v
  }
  return `${JSON.stringify(sort(value), null, 2)}\n`
}

export interface BuiltManifest {
  manifest: ReleaseManifest
  bytes: Buffer
  digest: string
}

export function encodeManifest(manifest: ReleaseManifest): BuiltManifest {
  const bytes = Buffer.from(canonicalJson(manifest), 'utf8')
  return {manifest, bytes, digest: sha256Hex(bytes)}
}

/**
 * The group's release as of now. When it says exactly what `previous` says (bar its creation
 * time), previous's time is kept: the same digest, so a redeploy of an unchanged group names the
 * release it already has and uploads nothing.
 */
export function buildRelease(project: string, group: Group, cookbooks: CookbooksRef | null, now: Date, previous?: ReleaseManifest, environments?: Record<string, Record<string, unknown>>): BuiltManifest {
  const fresh = buildManifest(project, group, cookbooks, now.toISOString(), environments)
  if (previous && canonicalJson({...previous, createdAt: ''}) === canonicalJson({...fresh, createdAt: ''})) {
    return encodeManifest({...fresh, createdAt: previous.createdAt})
  }
  return encodeManifest(fresh)
}

/** A manifest read back from the bucket: only the parts the plan compares (it was written by muster, but checked anyway). */
export function parseManifest(bytes: Buffer): ReleaseManifest | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as Partial<ReleaseManifest> | null
    if (typeof v !== 'object' || v === null || v.format !== 1 || typeof v.role !== 'object' || v.role === null || typeof v.createdAt !== 'string') return undefined
    return v as ReleaseManifest
  } catch {
    return undefined
  }
}
