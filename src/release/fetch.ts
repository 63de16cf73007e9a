// The node side of a release: download it with the node's own credentials, check it against the
// digest the deploy request (or groups/GROUP/release) names, unpack it beside the current one
// and switch stateDir/current to it in one rename. Everything that names a release comes from a
// registry any node can write, so the manifest is parsed defensively, sizes are capped, its S3
// keys must have the layout instance:deploy writes, and the cookbooks tarball may hold only plain
// files and directories inside its own directory. A release that fails any check changes nothing
// on disk.
//
//   STATE/releases/DIGEST/manifest.json   the manifest's bytes, as verified
//   STATE/releases/DIGEST/role.json       the role (its run_list is what chef converges)
//   STATE/releases/DIGEST/dna.json        the group's dna
//   STATE/releases/DIGEST/cookbooks/      the unpacked cookbooks (absent when the release has none)
//   STATE/releases/DIGEST/environments/   every environment's ENV.json (Chef environments; absent
//                                         without environments): chef-solo's environment_path
//   STATE/current -> releases/DIGEST      the release this node runs
import {createHash, randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, type Stats, symlinkSync, writeFileSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import {isAbsolute, join} from 'node:path'

import {Parser, type ReadEntry, Unpack, UnpackSync} from 'tar'

import {ENVIRONMENTS_DIR} from '../artifacts/chef-environment.js'
import {UserError} from '../errors.js'
import {isSegment} from '../registry/keys.js'
import type {ReleaseManifest, ReleaseRef} from '../registry/deploys.js'
import {openReleaseBucket, parseS3Url, type ReleaseBucket} from './bucket.js'

/** A manifest is a few role and dna documents: anything near this is not one. */
export const MANIFEST_CAP_BYTES = 8 * 1024 * 1024
/** The cookbooks tarball as downloaded (gzipped). */
export const TARBALL_CAP_BYTES = 256 * 1024 * 1024
/** The cookbooks unpacked: a gzip bomb stops here. */
export const UNPACKED_CAP_BYTES = 1024 * 1024 * 1024
export const ENTRY_CAP = 100_000
/** Tarballs up to this size are unpacked synchronously (see extract). */
const SYNC_UNPACK_BYTES = 1024 * 1024

/** A release that is not what its digest says, or not a release at all: refused, nothing converged. */
export class ReleaseRefused extends Error {}

export const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const HEX64 = /^[0-9a-f]{64}$/
const COOKBOOK = /^[A-Za-z0-9_.-]{1,128}$/
const ENVIRONMENT = /^[A-Za-z0-9_-]{1,64}$/

/** The manifest's JSON, checked against the release it should be (project and group). */
export function parseReleaseManifest(text: string, expect: {project: string; group: string}): ReleaseManifest {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (error) {
    throw new ReleaseRefused(`the manifest is not JSON: ${(error as Error).message}`)
  }
  const bad = (what: string): ReleaseRefused => new ReleaseRefused(`the manifest's ${what}`)
  if (!isObject(v)) throw bad('top level is not an object')
  if (v.format !== 1) throw bad(`format ${JSON.stringify(v.format)} is not 1`)
  if (v.project !== expect.project) throw bad(`project ${JSON.stringify(v.project)} is not ${expect.project}`)
  if (v.group !== expect.group) throw bad(`group ${JSON.stringify(v.group)} is not ${expect.group}`)
  if (!isObject(v.role)) throw bad('role is not an object')
  if (!isObject(v.dna)) throw bad('dna is not an object')
  const runList = v.role.run_list
  if (runList !== undefined && !(Array.isArray(runList) && runList.every((r) => typeof r === 'string' && r.length <= 512 && !/[,\s]/.test(r)))) throw bad('role.run_list is not a list of run list items')
  const agent = v.agent
  if (!isObject(agent) || !Array.isArray(agent.services) || agent.services.length > 1000) throw bad('agent.services is not a list')
  const services: ReleaseManifest['agent']['services'] = []
  for (const s of agent.services as unknown[]) {
    if (!isObject(s) || typeof s.name !== 'string' || !isSegment(s.name) || typeof s.cookbook !== 'string' || !COOKBOOK.test(s.cookbook)) throw bad('agent.services has an entry without a usable name and cookbook')
    if (s.port !== undefined && !(Number.isInteger(s.port) && (s.port as number) > 0 && (s.port as number) < 65_536)) throw bad(`agent.services ${s.name} has a bad port`)
    if (s.health_check !== undefined && (typeof s.health_check !== 'string' || s.health_check.length > 1024)) throw bad('agent.services has a health_check that is not a string of at most 1024 characters')
    services.push({name: s.name, cookbook: s.cookbook, ...(s.port === undefined ? {} : {port: s.port as number}), ...(s.health_check === undefined ? {} : {health_check: s.health_check as string})})
  }
  if (!Array.isArray(agent.dependsOn) || agent.dependsOn.length > 1000 || !agent.dependsOn.every((d) => typeof d === 'string' && isSegment(d))) throw bad('agent.dependsOn is not a list of service names')
  let cookbooks: ReleaseManifest['cookbooks'] = null
  if (v.cookbooks !== null) {
    const c = v.cookbooks
    if (!isObject(c) || typeof c.url !== 'string' || typeof c.sha256 !== 'string' || !HEX64.test(c.sha256) || !Number.isInteger(c.bytes) || (c.bytes as number) < 0) throw bad('cookbooks is neither null nor {url, sha256, bytes}')
    cookbooks = {url: c.url, sha256: c.sha256, bytes: c.bytes as number}
  }
  let environments: ReleaseManifest['environments']
  if (v.environments !== undefined) {
    const e = v.environments
    if (!isObject(e) || Object.keys(e).length > 100) throw bad('environments is not an object of at most 100 environments')
    environments = {}
    for (const [name, chef] of Object.entries(e)) {
      // Each becomes the file environments/NAME.json: a plain name, as the nodes file allows.
      if (!ENVIRONMENT.test(name) || !isObject(chef) || chef.name !== name) throw bad(`environments has an entry ${JSON.stringify(name.slice(0, 80))} that is not a Chef environment of that name`)
      environments[name] = chef
    }
  }
  if (typeof v.createdAt !== 'string' || v.createdAt.length > 40 || Number.isNaN(Date.parse(v.createdAt))) throw bad('createdAt is not a time')
  return {format: 1, project: expect.project, group: expect.group, role: v.role, dna: v.dna, agent: {services, dependsOn: agent.dependsOn as string[]}, cookbooks, ...(environments === undefined ? {} : {environments}), createdAt: v.createdAt}
}

/** The run list a release converges: its role's run_list, comma-separated as chef's --override-runlist takes it. */
export function releaseRunList(manifest: ReleaseManifest): string {
  const list = manifest.role.run_list
  return Array.isArray(list) ? list.join(',') : ''
}

export interface InstalledRelease {
  digest: string
  dir: string
  manifest: ReleaseManifest
}

export interface FetchOptions {
  project: string
  /**
   * The project of the bucket's keys and the manifest (muster/PROJECT/…): with environments the
   * fleet's, which they share, so production fetches the very release staging ran (default: project).
   */
  releaseProject?: string
  group: string
  stateDir: string
  /** When set, a release in any other bucket is refused (MUSTER_RELEASE_BUCKET on the node). */
  allowedBucket?: string
  /** The bucket client (tests of the logic); defaults to S3 with the node's credentials. */
  openBucket?: (bucket: string) => ReleaseBucket
}

const releasesDir = (stateDir: string): string => join(stateDir, 'releases')
export const currentLink = (stateDir: string): string => join(stateDir, 'current')

/** The digest stateDir/current points at, or undefined when the node has never switched to a release. */
export function currentDigest(stateDir: string): string | undefined {
  try {
    const target = readlinkSync(currentLink(stateDir))
    const match = /^releases\/([0-9a-f]{64})$/.exec(target)
    return match ? match[1] : undefined
  } catch {
    return undefined
  }
}

/** The release stateDir/current points at, read back from disk (its manifest re-parsed, its digest re-checked). */
export function readCurrentRelease(stateDir: string, expect: {project: string; group: string}): InstalledRelease | undefined {
  const digest = currentDigest(stateDir)
  if (digest === undefined) return undefined
  const dir = join(releasesDir(stateDir), digest)
  const bytes = readFileSync(join(dir, 'manifest.json'))
  if (sha256(bytes) !== digest) throw new UserError(`${join(dir, 'manifest.json')} does not match its digest ${digest}`, {hint: `Remove ${currentLink(stateDir)}; the agent then converges the group's current release at boot.`})
  try {
    return {digest, dir, manifest: parseReleaseManifest(bytes.toString('utf8'), expect)}
  } catch (error) {
    throw new UserError(`the current release ${dir}: ${(error as Error).message}`, {hint: `Remove ${currentLink(stateDir)}; the agent then converges the group's current release at boot.`})
  }
}

/**
 * Downloads and verifies the release `ref` names and unpacks it under stateDir/releases/DIGEST
 * (kept if already there: its name is its content). Does not switch to it. Throws ReleaseRefused
 * for a release that fails a check, UserError when the bucket cannot be read.
 */
export async function fetchRelease(ref: ReleaseRef, options: FetchOptions): Promise<InstalledRelease> {
  const {group, stateDir} = options
  const project = options.releaseProject ?? options.project
  const location = parseS3Url(ref.url)
  if (!location || location.key !== `muster/${project}/releases/${group}/${ref.digest}.json`) throw new ReleaseRefused(`${ref.url} is not where instance:deploy puts the ${group} release ${ref.digest}`)
  if (options.allowedBucket !== undefined && location.bucket !== options.allowedBucket) throw new ReleaseRefused(`${ref.url} is not in the release bucket ${options.allowedBucket}`)
  const bucket = (options.openBucket ?? ((name: string) => openReleaseBucket({bucket: name})))(location.bucket)
  const bytes = await bucket.get(location.key, MANIFEST_CAP_BYTES)
  const actual = sha256(bytes)
  if (actual !== ref.sha256 || actual !== ref.digest) throw new ReleaseRefused(`digest mismatch: ${ref.url} has sha256 ${actual}, the deploy names ${ref.sha256}`)
  const manifest = parseReleaseManifest(bytes.toString('utf8'), {project, group})
  const dir = join(releasesDir(stateDir), ref.digest)
  if (existsSync(join(dir, 'manifest.json'))) return {digest: ref.digest, dir, manifest}

  let tarball: Buffer | undefined
  if (manifest.cookbooks) {
    const c = parseS3Url(manifest.cookbooks.url)
    if (!c || c.bucket !== location.bucket || c.key !== `muster/${project}/cookbooks/${manifest.cookbooks.sha256}.tgz`) throw new ReleaseRefused(`the cookbooks ${manifest.cookbooks.url} are not where instance:deploy puts them`)
    if (manifest.cookbooks.bytes > TARBALL_CAP_BYTES) throw new ReleaseRefused(`the cookbooks tarball is ${manifest.cookbooks.bytes} bytes, over the cap of ${TARBALL_CAP_BYTES}`)
    tarball = await bucket.get(c.key, TARBALL_CAP_BYTES)
    const tarSha = sha256(tarball)
    if (tarSha !== manifest.cookbooks.sha256) throw new ReleaseRefused(`digest mismatch: ${manifest.cookbooks.url} has sha256 ${tarSha}, the manifest names ${manifest.cookbooks.sha256}`)
    await checkTarball(tarball)
  }

  // Built in a temp dir beside its final place and renamed there: a release dir is whole or absent.
  // The directories and the few small JSON files (the manifest's parts, under its 8 MiB cap) are
  // written with synchronous calls: each promise-based writeFile is three thread-pool round trips,
  // and together they were most of an agent's CPU for a small release (bench/deploy.ts).
  mkdirSync(releasesDir(stateDir), {recursive: true, mode: 0o700})
  const temp = join(releasesDir(stateDir), `.${ref.digest}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    mkdirSync(temp, {mode: 0o700})
    if (tarball) {
      mkdirSync(join(temp, 'cookbooks'), {mode: 0o700})
      await extract(tarball, join(temp, 'cookbooks'))
    }
    writeFileSync(join(temp, 'role.json'), `${JSON.stringify(manifest.role, null, 2)}\n`, {mode: 0o600})
    writeFileSync(join(temp, 'dna.json'), `${JSON.stringify(manifest.dna, null, 2)}\n`, {mode: 0o600})
    if (manifest.environments !== undefined) {
      mkdirSync(join(temp, ENVIRONMENTS_DIR), {mode: 0o700})
      for (const [name, chef] of Object.entries(manifest.environments)) {
        writeFileSync(join(temp, ENVIRONMENTS_DIR, `${name}.json`), `${JSON.stringify(chef, null, 4)}\n`, {mode: 0o600})
      }
    }
    // Last: its presence is what says the dir is complete.
    writeFileSync(join(temp, 'manifest.json'), bytes, {mode: 0o600})
    // An incomplete dir from an attempt that died midway (it may be big: removed off the loop).
    if (existsSync(dir)) await rm(dir, {recursive: true, force: true})
    renameSync(temp, dir)
  } catch (error) {
    await rm(temp, {recursive: true, force: true})
    throw error
  }
  return {digest: ref.digest, dir, manifest}
}

/** Points stateDir/current at the release in one rename (a new symlink renamed over the old). */
export async function switchCurrent(stateDir: string, digest: string): Promise<void> {
  const temp = join(stateDir, `.current.${randomBytes(4).toString('hex')}.tmp`)
  // Two calls on tiny entries: synchronous (see fetchRelease).
  symlinkSync(join('releases', digest), temp)
  try {
    renameSync(temp, currentLink(stateDir))
  } catch (error) {
    rmSync(temp, {force: true})
    throw error
  }
}

/** Why an entry may not be unpacked, or undefined when it may. */
export function entryProblem(path: string, type: string): string | undefined {
  if (type !== 'File' && type !== 'OldFile' && type !== 'Directory' && type !== 'ContiguousFile') return `${path} is a ${type} (only files and directories are unpacked)`
  if (isAbsolute(path) || /^[A-Za-z]:/.test(path)) return `${path} is an absolute path`
  if (path.split(/[/\\]/).includes('..')) return `${path} leaves the cookbooks directory`
  if (path.includes('\0')) return `${path} has a NUL byte`
  return undefined
}

/** Reads the whole tarball once before anything is written: one bad entry refuses all of it. */
async function checkTarball(tarball: Buffer): Promise<void> {
  let problem: string | undefined
  let total = 0
  let entries = 0
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        entries++
        total += entry.size ?? 0
        problem ??= entryProblem(entry.path, entry.type)
        if (problem === undefined && entries > ENTRY_CAP) problem = `more than ${ENTRY_CAP} entries`
        if (problem === undefined && total > UNPACKED_CAP_BYTES) problem = `more than ${UNPACKED_CAP_BYTES} bytes unpacked`
        entry.resume()
      },
    })
    parser.on('error', reject)
    parser.on('end', () => resolve())
    parser.end(tarball)
  }).catch((error: Error) => {
    throw new ReleaseRefused(`the cookbooks tarball is not a readable tar.gz: ${error.message}`)
  })
  if (problem !== undefined) throw new ReleaseRefused(`the cookbooks tarball is refused: ${problem}`)
}

async function extract(tarball: Buffer, cwd: string): Promise<void> {
  const options = {
    cwd,
    strict: true,
    // node-tar already refuses .. and strips leading /; the filter is the second line of defence.
    filter: (path: string, entry: ReadEntry | Stats) => entryProblem(path, (entry as ReadEntry).type) === undefined,
    preserveOwner: false,
    maxDepth: 64,
  }
  if (tarball.length <= SYNC_UNPACK_BYTES) {
    // A third of the CPU of the streaming unpack (bench/deploy.ts: ~0.4 ms against ~1.3 ms for a
    // small cookbook set), for a tarball small enough that holding the agent's loop is brief.
    let failure: unknown
    const unpack = new UnpackSync(options)
    unpack.on('error', (error: unknown) => {
      failure ??= error
    })
    unpack.end(tarball)
    if (failure !== undefined) throw failure
    return
  }
  await new Promise<void>((resolve, reject) => {
    const unpack = new Unpack(options)
    unpack.on('error', reject)
    unpack.on('finish', () => resolve())
    unpack.end(tarball)
  })
}
