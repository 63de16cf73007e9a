// Releases and deploy requests for the agent's deploy tests, written as instance:deploy lays them
// out (src/registry/deploys.ts): a manifest and a cookbooks tarball uploaded to moto's S3, and the
// request (and groups/GROUP/release) put into etcd. Tests only: the CLI's real release builder
// (src/release/build.ts, pack.ts, upload.ts) replaces this in end-to-end tests.
import {createHash} from 'node:crypto'
import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {CreateBucketCommand, PutObjectCommand, S3Client} from '@aws-sdk/client-s3'
import type {Etcd3} from 'etcd3'
import {create} from 'tar'

import {type DeployNodeStatus, type DeployProgress, type DeployRequest, type DeployState, deployKey, rolloutNodesPrefix, deployProgress, rolloutSlotsPrefix, rolloutStopKey, groupReleaseKey, newDeployId, parseDeployNodeStatus, parseDeployRequest, parseDeployStop, type ReleaseManifest, type ReleaseRef} from '../../src/registry/deploys.js'
import type {MotoServer} from './moto.js'
import {makeTempDir, removeDir} from './process.js'

export const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

export function motoS3(moto: MotoServer): S3Client {
  return new S3Client({endpoint: moto.endpoint, region: moto.region, forcePathStyle: true, credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}, maxAttempts: 1})
}

export async function createBucket(moto: MotoServer, bucket: string): Promise<void> {
  const s3 = motoS3(moto)
  try {
    await s3.send(new CreateBucketCommand({Bucket: bucket}))
  } finally {
    s3.destroy()
  }
}

export async function putObject(moto: MotoServer, bucket: string, key: string, body: Buffer | string): Promise<void> {
  const s3 = motoS3(moto)
  try {
    await s3.send(new PutObjectCommand({Bucket: bucket, Key: key, Body: body}))
  } finally {
    s3.destroy()
  }
}

/** A gzipped tarball of `files` (path → content), paths relative to the cookbooks dir. */
export async function packCookbooks(files: Record<string, string>): Promise<Buffer> {
  const dir = makeTempDir('cookbooks')
  try {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), {recursive: true})
      writeFileSync(join(dir, path), content)
    }
    const chunks: Buffer[] = []
    const stream = create({gzip: true, cwd: dir, portable: true}, Object.keys(files).map((p) => p.split('/')[0] as string).filter((p, i, all) => all.indexOf(p) === i))
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk))
    return Buffer.concat(chunks)
  } finally {
    removeDir(dir)
  }
}

export interface ReleaseSpec {
  project: string
  group: string
  runList: string[]
  services?: Array<{name: string; cookbook: string; port?: number}>
  dependsOn?: string[]
  dna?: Record<string, unknown>
  /** Cookbook files (path → content); null for a release without cookbooks. */
  cookbooks?: Record<string, string> | null
  /** A tarball to use as is (e.g. one with hostile entries). */
  tarball?: Buffer
}

export interface BuiltRelease {
  manifest: ReleaseManifest
  bytes: Buffer
  ref: ReleaseRef
  tarball: Buffer | null
  manifestKey: string
  tarballKey: string | null
}

export async function buildRelease(bucket: string, spec: ReleaseSpec): Promise<BuiltRelease> {
  const files = spec.cookbooks === undefined ? {'app/recipes/default.rb': `log "${spec.group}"\n`} : spec.cookbooks
  const tarball = spec.tarball ?? (files === null ? null : await packCookbooks(files))
  const tarSha = tarball ? sha256(tarball) : null
  const tarballKey = tarSha ? `muster/${spec.project}/cookbooks/${tarSha}.tgz` : null
  const manifest: ReleaseManifest = {
    format: 1,
    project: spec.project,
    group: spec.group,
    role: {name: `role-${spec.group}`, json_class: 'Chef::Role', run_list: spec.runList},
    dna: spec.dna ?? {id: spec.group, run_list: [`role[role-${spec.group}]`]},
    agent: {services: spec.services ?? [], dependsOn: spec.dependsOn ?? []},
    cookbooks: tarball && tarballKey && tarSha ? {url: `s3://${bucket}/${tarballKey}`, sha256: tarSha, bytes: tarball.length} : null,
    createdAt: new Date().toISOString(),
  }
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)
  const digest = sha256(bytes)
  const manifestKey = `muster/${spec.project}/releases/${spec.group}/${digest}.json`
  return {manifest, bytes, tarball, tarballKey, manifestKey, ref: {digest, sha256: digest, url: `s3://${bucket}/${manifestKey}`}}
}

export async function uploadRelease(moto: MotoServer, bucket: string, release: BuiltRelease): Promise<void> {
  if (release.tarball && release.tarballKey) await putObject(moto, bucket, release.tarballKey, release.tarball)
  await putObject(moto, bucket, release.manifestKey, release.bytes)
}

export interface RequestSpec {
  project: string
  releases: Record<string, ReleaseRef>
  targets: Record<string, string[]>
  n: number
  maxErrors?: number
  deadlineMs?: number
  /** The deploy id (default: a new one), e.g. to write keys under rollout/ID/ before the request. */
  id?: string
  /** Also record each group's current release at groups/GROUP/release (as the CLI does). */
  setGroupRelease?: boolean
}

/** Writes groups/GROUP/release for each group, then the request; resolves with the deploy id. */
export async function writeDeployRequest(client: Etcd3, spec: RequestSpec): Promise<string> {
  const now = new Date()
  const id = spec.id ?? newDeployId(now)
  const groups = Object.keys(spec.releases).sort()
  const request: DeployRequest = {
    id,
    groups,
    n: spec.n,
    maxErrors: spec.maxErrors ?? 0,
    releases: spec.releases,
    targets: spec.targets,
    requestedAt: now.toISOString(),
    requestedBy: 'test',
    deadline: new Date(now.getTime() + (spec.deadlineMs ?? 120_000)).toISOString(),
  }
  if (spec.setGroupRelease !== false) {
    for (const group of groups) await client.put(groupReleaseKey(spec.project, group)).value(JSON.stringify(spec.releases[group]))
  }
  await client.put(deployKey(spec.project, id)).value(JSON.stringify(request))
  return id
}

export interface ReadDeploy {
  state: DeployState
  progress: DeployProgress
  slots: Map<string, string>
}

/** The rollout as etcd holds it now, read the way the CLI follows it. */
export async function readDeploy(client: Etcd3, project: string, id: string): Promise<ReadDeploy> {
  const text = await client.get(deployKey(project, id)).string()
  const request = text === null ? undefined : parseDeployRequest(id, text)
  if (!request) throw new Error(`no readable deploy request ${id}`)
  const statuses = new Map<string, DeployNodeStatus>()
  // Statuses, slots and the stop key at one revision: read apart, a node that finished and let its
  // slot go between the reads looks `running` without a slot (lost).
  const nodeKvs = await client.getAll().prefix(rolloutNodesPrefix(project, id)).exec()
  const revision = nodeKvs.header.revision
  for (const kv of nodeKvs.kvs) {
    const node = kv.key.toString().slice(rolloutNodesPrefix(project, id).length)
    const status = parseDeployNodeStatus(node, kv.value.toString())
    if (status) statuses.set(node, status)
  }
  const slotKvs = await client.getAll().prefix(rolloutSlotsPrefix(project, id)).revision(revision).exec()
  const slots = new Map(slotKvs.kvs.map((kv) => [kv.key.toString(), String(kv.lease)]))
  const stopText = await client.get(rolloutStopKey(project, id)).revision(revision).string()
  const state: DeployState = {request, statuses, slotLeases: new Set(slots.values()), stop: stopText === null ? undefined : parseDeployStop(stopText)}
  return {state, progress: deployProgress(state, new Date()), slots}
}

/** The most provisions that ran at once among `intervals` (start/end in ms). */
export function maxConcurrent(intervals: ReadonlyArray<{start: number; end: number}>): number {
  const points = intervals.flatMap((r) => [{t: r.start, d: 1}, {t: r.end, d: -1}]).sort((a, b) => a.t - b.t || a.d - b.d)
  let now = 0
  let max = 0
  for (const p of points) {
    now += p.d
    max = Math.max(max, now)
  }
  return max
}
