// instance:deploy: plan a rollout of every targeted group's release, then (once confirmed) upload
// the releases and write the request the agents act on. The order is the promise this verb keeps:
// every refusal (bad flags, no registry, no bucket, a group with no live node) comes before any
// write; the uploads come before any registry write; and the request and each group's release
// record go in one etcd transaction. Following the rollout is deploy-follow.ts.
import {createRequire} from 'node:module'
import {hostname, userInfo} from 'node:os'

import {toJsonText} from '../artifacts/json.js'
import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {type Group, nodeGroups, type NodesFile, requireNodeGroup} from '../nodes/model.js'
import type {RegistryTarget} from '../registry/connect-options.js'
import {deployKey, type DeployRequest, groupReleaseKey, newDeployId, parseReleaseRef, type ReleaseManifest, type ReleaseRef} from '../registry/deploys.js'
import {openEtcd} from '../registry/etcd.js'
import {nodesPrefix, projectPrefix} from '../registry/keys.js'
import {registryFailure} from '../registry/read.js'
import type {RegistryStore, Snapshot} from '../registry/store.js'
import {RegistryView} from '../registry/view.js'
import {unfinishedDeploys} from './deploy-follow.js'
import {checkBucketName, openReleaseBucket, parseS3Url, type ReleaseBucket} from '../release/bucket.js'
import {buildRelease, type BuiltManifest, canonicalJson, cookbooksKey, type CookbooksRef, manifestKey, parseManifest, releaseEnvironments, releasesPrefix, sha256Hex} from '../release/build.js'
import {MANIFEST_CAP_BYTES} from '../release/fetch.js'
import {type PackedCookbooks, packCookbooks} from '../release/pack.js'
import {type UploadResult, uploadReleases} from '../release/upload.js'
import type {IoHost} from './io.js'

/** Seconds one batch may take in a group without autoscale (which has no autoscale.timeout). */
export const DEFAULT_BATCH_SECONDS = 300

export interface DeployOptions {
  cwd: string
  nodesPath?: string | undefined
  /** --env or MUSTER_ENV; the nodes file's default environment when absent. */
  environment?: string | undefined
  /** One group, or every group with live nodes. */
  group?: string | undefined
  n: number
  maxErrors: number
  /** Seconds; default: see defaultTimeout. */
  timeout?: number | undefined
  /** --bucket; else MUSTER_RELEASE_BUCKET, else __base__.release_bucket in the nodes file. */
  bucket?: string | undefined
  registry: RegistryTarget
  /**
   * --release DIGEST: roll out this existing release of the one named group (the one another
   * environment ran) instead of building one. It must be in the release bucket already.
   */
  release?: string | undefined
  env?: NodeJS.ProcessEnv
}

/** Injection points: tests give an in-memory bucket or a store that counts writes. */
export interface DeployDeps {
  openStore(target: RegistryTarget): RegistryStore
  openBucket(name: string): ReleaseBucket
  now(): Date
}

export const defaultDeps: DeployDeps = {
  openStore: (target) => openEtcd({endpoints: target.endpoints, callTimeoutMs: 3000, security: target.security}),
  openBucket: (name) => openReleaseBucket({bucket: name}),
  now: () => new Date(),
}

export interface GroupPlan {
  group: string
  /** Live nodes of the group, sorted: the nodes this deploy targets. */
  targets: string[]
  /** The group's current release, or null for its first. */
  previous: {digest: string; url: string; createdAt: string | null} | null
  /** Why the previous release could not be compared (deleted from the bucket, unreadable). */
  previousError: string | null
  /** Unified diff of roles/GROUP.json since the previous release; '' when unchanged; null on a first release. */
  roleDiff: string | null
  /** Whether the cookbooks tarball differs from the previous release's (true on a first release). */
  cookbooksChanged: boolean
  /** The release this deploy rolls out. */
  release: ReleaseRef
  /** The same release as the group has now (a redeploy: nodes converge again on what they run). */
  unchanged: boolean
  /** Seconds one batch may take: autoscale.timeout, else DEFAULT_BATCH_SECONDS. */
  batchSeconds: number
}

export interface DeployPlan {
  id: string
  /** The registry project (with environments: the environment's own). */
  project: string
  /** The environment deployed to (absent without environments). */
  environment?: string
  /** The project of the release bucket's keys (muster/PROJECT/): with environments, the fleet's, which they share. */
  releaseProject?: string
  /** --release: the existing release rolled out (nothing is built or uploaded); null or absent when one is built. */
  promotion?: {digest: string; createdAt: string} | null
  bucket: string
  n: number
  maxErrors: number
  /** Seconds the rollout may take in all. */
  timeout: number
  /** How the timeout was chosen, for people: "--timeout" or the formula with its numbers. */
  timeoutSource: string
  groups: GroupPlan[]
  cookbooks: {sha256: string; bytes: number; url: string; files: number} | null
  totalTargets: number
  /** Live nodes of groups the nodes file does not have (left out, said). */
  unknownGroups: string[]
}

export interface DeployStarted {
  plan: DeployPlan
  uploads: UploadResult
  request: DeployRequest
}

/**
 * The default --timeout: every batch may take as long as the slowest targeted group's
 * autoscale.timeout (DEFAULT_BATCH_SECONDS without autoscale), and a rollout of T nodes N at a time
 * has ceil(T / N) batches. So timeout = max(autoscale.timeout) × ceil(targets / n).
 */
export function defaultTimeout(groups: ReadonlyArray<{batchSeconds: number; targets: readonly string[]}>, n: number): {seconds: number; formula: string} {
  const batch = Math.max(...groups.map((g) => g.batchSeconds))
  const total = groups.reduce((sum, g) => sum + g.targets.length, 0)
  const batches = Math.ceil(total / n)
  return {seconds: batch * batches, formula: `${batch} s (autoscale.timeout) × ${batches} batch${batches === 1 ? '' : 'es'} (ceil(${total} nodes / ${n}))`}
}

/** The release bucket: --bucket, else MUSTER_RELEASE_BUCKET, else the nodes file's __base__.release_bucket. */
export function releaseBucketName(flag: string | undefined, env: NodeJS.ProcessEnv, nodes?: Pick<NodesFile, 'file' | 'releaseBucket'>): string {
  if (flag !== undefined) return checkBucketName(flag, '--bucket')
  const fromEnv = env.MUSTER_RELEASE_BUCKET
  if (fromEnv) return checkBucketName(fromEnv, 'MUSTER_RELEASE_BUCKET')
  // The schema checked the name already.
  if (nodes?.releaseBucket !== undefined) return nodes.releaseBucket
  throw new UserError('no release bucket', {
    hint: `Give --bucket NAME, set MUSTER_RELEASE_BUCKET, or set "release_bucket" in __base__ of ${nodes?.file ?? 'the nodes file'}: releases are uploaded there and the nodes fetch them from it. Nothing was written.`,
  })
}

export function checkCounts(options: Pick<DeployOptions, 'n' | 'maxErrors' | 'timeout'>): void {
  if (!Number.isInteger(options.n) || options.n < 1) {
    throw new UserError(`-n ${options.n}: expected at least 1 node at a time`, {hint: 'Give -n N with N ≥ 1 (how many nodes provision at once). Nothing was written.'})
  }
  if (!Number.isInteger(options.maxErrors) || options.maxErrors < 0) {
    throw new UserError(`--max-errors ${options.maxErrors}: expected 0 or more`, {hint: 'Give --max-errors K with K ≥ 0 (failures tolerated before no further node starts). Nothing was written.'})
  }
  if (options.timeout !== undefined && (!Number.isInteger(options.timeout) || options.timeout < 1)) {
    throw new UserError(`--timeout ${options.timeout}: expected a number of seconds ≥ 1`, {hint: 'Give --timeout SECONDS, or leave it out for the default (autoscale.timeout × batches). Nothing was written.'})
  }
}

const PERMISSION_HINT = 'This etcd has authentication on, and the user given may not do this: deploy requests and group releases take the operators\' user (muster registry:init creates muster-PROJECT-operator). Give it with --etcd-user (MUSTER_ETCD_USER) and MUSTER_ETCD_PASSWORD or --etcd-password-file.'

/** Bounds a registry call: a CLI must never hang on a registry that does not answer. */
export async function registryCall<T>(endpoints: readonly string[], call: () => Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms)
    })
    return await Promise.race([call(), timeout])
  } catch (error) {
    if (error instanceof UserError) throw error
    // Unreachable, refused credentials or certificates, or a user without the right (an agent's
    // user cannot write a deploy request): each said as what it is, not as "cannot reach".
    const failure = registryFailure(error as Error, endpoints, PERMISSION_HINT)
    throw new UserError(failure.message, {hint: `${failure.hint ?? ''} Nothing was written to the registry.`.trim(), cause: error})
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Whether the bucket answers, before the plan is shown: a GET of a key that is never written. S3
 * tells a missing key (fine: the bucket is there) from a missing bucket, denied access or no answer
 * only on a GET (a HEAD's 404 has no body), and the bucket turns each into a UserError.
 */
async function probeBucket(bucket: ReleaseBucket, key: string): Promise<void> {
  try {
    await bucket.get(key)
  } catch (error) {
    if (error instanceof UserError && error.message === `s3://${bucket.bucket}/${key} does not exist`) return
    throw error
  }
}

const require = createRequire(import.meta.url)
/** The diff of two roles, keys sorted on both sides (a manifest stores them sorted), so only content shows. */
function roleDiff(group: string, before: Record<string, unknown>, after: Record<string, unknown>): string {
  const a = toJsonText(JSON.parse(canonicalJson(before)), 4)
  const b = toJsonText(JSON.parse(canonicalJson(after)), 4)
  if (a === b) return ''
  const {createTwoFilesPatch} = require('diff') as typeof import('diff')
  return createTwoFilesPatch(`a/roles/${group}.json`, `b/roles/${group}.json`, a, b, 'last release', 'this release', {context: 3})
    .split('\n')
    .filter((line, i) => !(i < 2 && (line.startsWith('Index:') || line.startsWith('==='))))
    .join('\n')
    .trimEnd()
}

export function whoAmI(env: NodeJS.ProcessEnv): string {
  let user = env.USER ?? env.LOGNAME ?? 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (a container's arbitrary uid): the environment's name will do
  }
  return `${user}@${hostname()}`.slice(0, 256)
}

/** One deploy from plan to request: holds the registry connection and the bucket between steps. */
export class Deploy {
  private store: RegistryStore | undefined
  private built = new Map<string, BuiltManifest>()
  private packed: PackedCookbooks | null = null
  private bucket: ReleaseBucket | undefined

  constructor(
    private readonly options: DeployOptions,
    private readonly io: Pick<IoHost, 'progress'>,
    private readonly deps: DeployDeps = defaultDeps,
  ) {}

  /** The registry connection (open after plan()); the follower reuses it. */
  get registry(): RegistryStore {
    if (!this.store) throw new Error('Deploy.plan() first')
    return this.store
  }

  /** Everything the deploy will do, read-only: refusals throw here, before any write. */
  async plan(): Promise<DeployPlan> {
    const {options, deps} = this
    const env = options.env ?? process.env
    checkCounts(options)
    const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath, env, environment: options.environment})
    const bucketName = releaseBucketName(options.bucket, env, nodes)
    if (options.release !== undefined) checkPromotion(options.release, options.group)
    const named = options.group === undefined ? undefined : requireNodeGroup(nodes, options.group, 'nodes to deploy to', 'nothing was written')
    const {project, endpoints} = options.registry
    // Releases are the fleet's, whatever environment they go to: the same bytes, the same digest.
    if (options.registry.environment !== undefined && options.registry.releaseProject === undefined) {
      throw new UserError(`environment ${options.registry.environment} names its own registry project (${project}), and there is no fleet project to file releases under`, {
        hint: 'Releases are shared by every environment under the fleet\'s project: set __base__.registry.project in the nodes file, give --project or MUSTER_PROJECT, or run this beside the Pulumi.yaml that names the project. Nothing was written.',
      })
    }
    const releaseProject = options.registry.releaseProject ?? project
    const environments = releaseEnvironments(nodes)

    this.store = deps.openStore(options.registry)
    const store = this.store
    const snapshot: Snapshot = await registryCall(endpoints, () => store.snapshot(nodesPrefix(project)))
    const view = new RegistryView(project)
    view.apply(snapshot.events, snapshot.revision)
    const live = new Map<string, string[]>()
    for (const record of view.nodes.values()) live.set(record.group, [...(live.get(record.group) ?? []), record.node])

    const {groups, unknownGroups} = selectTargets(nodes, named, live)
    const busy = await unfinishedDeploys(store, project, groups.map((g) => g.name), deps.now())
    const first = busy[0]
    if (first) {
      const {counts} = first.progress
      throw new UserError(`deploy ${first.id} of ${first.groups.join(', ')} is still rolling out (${counts.running} running, ${counts.waiting} waiting)`, {
        hint: `One deploy of a group at a time: follow it with "muster deploy:status ${first.id} --follow", or stop it with "muster deploy:cancel ${first.id}" and run this again once its running nodes finish. Nothing was written.`,
      })
    }

    const releases = await registryCall(endpoints, () => store.snapshot(`${projectPrefix(project)}groups/`))
    const currentRelease = new Map<string, ReleaseRef>()
    for (const event of releases.events) {
      const group = groups.find((g) => event.key === groupReleaseKey(project, g.name))
      const ref = group ? parseReleaseRef(event.value) : undefined
      if (group && ref) currentRelease.set(group.name, ref)
    }

    // The bucket answers (or the deploy stops here): exists() names a missing bucket, denied access
    // or an endpoint that does not answer as a user error.
    this.bucket = deps.openBucket(bucketName)
    const bucket = this.bucket
    // A promotion builds nothing: the release's cookbooks are in the bucket already.
    this.packed = options.release === undefined ? await packCookbooks(options.cwd) : null
    const packed = this.packed
    const cookbooksRef: CookbooksRef | null = packed ? {url: `s3://${bucketName}/${cookbooksKey(releaseProject, packed.sha256)}`, sha256: packed.sha256, bytes: packed.bytes.length} : null
    await probeBucket(bucket, `${releasesPrefix(releaseProject)}releases/.probe`)
    const promoted = options.release === undefined ? undefined : await existingRelease(bucket, releaseProject, groups[0] as Group, options.release, nodes.environment)

    const now = deps.now()
    const plans: GroupPlan[] = []
    for (const group of groups) {
      const ref = currentRelease.get(group.name)
      let previous: ReleaseManifest | undefined
      let previousError: string | null = null
      if (ref) {
        const location = parseS3Url(ref.url)
        try {
          if (!location || location.bucket !== bucketName) throw new UserError(`it is in another bucket (${ref.url})`)
          previous = parseManifest(await bucket.get(location.key))
          if (!previous) previousError = `${ref.url} is not a release manifest`
        } catch (error) {
          previousError = (error as Error).message
        }
      }
      const built = promoted ?? buildRelease(releaseProject, group, cookbooksRef, now, previous, environments)
      this.built.set(group.name, built)
      const url = `s3://${bucketName}/${manifestKey(releaseProject, group.name, built.digest)}`
      plans.push({
        group: group.name,
        targets: (live.get(group.name) ?? []).sort(),
        previous: ref ? {digest: ref.digest, url: ref.url, createdAt: previous?.createdAt ?? null} : null,
        previousError,
        roleDiff: previous ? roleDiff(group.name, previous.role, built.manifest.role) : null,
        cookbooksChanged: previous ? previous.cookbooks?.sha256 !== built.manifest.cookbooks?.sha256 : true,
        release: {digest: built.digest, url, sha256: built.digest},
        unchanged: ref?.digest === built.digest,
        batchSeconds: group.autoscale === false ? DEFAULT_BATCH_SECONDS : group.autoscale.timeout,
      })
    }
    const fallback = defaultTimeout(plans, options.n)
    const totalTargets = plans.reduce((sum, g) => sum + g.targets.length, 0)
    return {
      id: newDeployId(now),
      project,
      ...(options.registry.environment === undefined ? {} : {environment: options.registry.environment}),
      releaseProject,
      promotion: promoted ? {digest: promoted.digest, createdAt: promoted.manifest.createdAt} : null,
      bucket: bucketName,
      n: options.n,
      maxErrors: options.maxErrors,
      timeout: options.timeout ?? fallback.seconds,
      timeoutSource: options.timeout === undefined ? fallback.formula : '--timeout',
      groups: plans,
      cookbooks: packed && cookbooksRef ? {sha256: packed.sha256, bytes: packed.bytes.length, url: cookbooksRef.url, files: packed.entries.length} : promotedCookbooks(promoted),
      totalTargets,
      unknownGroups,
    }
  }

  /** Uploads the releases, then writes the request and the groups' release records in one transaction. */
  async start(plan: DeployPlan): Promise<DeployStarted> {
    if (!this.bucket || !this.store) throw new Error('Deploy.plan() first')
    const store = this.store
    const releaseProject = plan.releaseProject ?? plan.project
    this.io.progress(plan.promotion ? `Checking s3://${plan.bucket}/muster/${releaseProject}/ still holds release ${plan.promotion.digest}…` : `Uploading to s3://${plan.bucket}/muster/${releaseProject}/ (what is there already is not sent again)…`)
    // A promoted release is there already (checked by the plan): uploadReleases finds it and sends nothing.
    const uploads = await uploadReleases(this.bucket, releaseProject, this.packed, this.built)
    const requestedAt = this.deps.now()
    const request: DeployRequest = {
      id: plan.id,
      groups: plan.groups.map((g) => g.group),
      n: plan.n,
      maxErrors: plan.maxErrors,
      releases: Object.fromEntries(plan.groups.map((g) => [g.group, g.release])),
      targets: Object.fromEntries(plan.groups.map((g) => [g.group, g.targets])),
      requestedAt: requestedAt.toISOString(),
      requestedBy: whoAmI(this.options.env ?? process.env),
      deadline: new Date(requestedAt.getTime() + plan.timeout * 1000).toISOString(),
    }
    const entries: Array<[string, string]> = [
      [deployKey(plan.project, plan.id), JSON.stringify(request)],
      ...plan.groups.map((g): [string, string] => [groupReleaseKey(plan.project, g.group), JSON.stringify(g.release)]),
    ]
    await registryCall(this.options.registry.endpoints, () => store.putAll(entries), 10_000)
    return {plan, uploads, request}
  }

  close(): void {
    this.store?.close()
    this.store = undefined
  }
}

const DIGEST = /^[0-9a-f]{64}$/

/** --release's own checks, before anything is read: one group, and a digest that can be one. */
export function checkPromotion(release: string, group: string | undefined): void {
  if (group === undefined) {
    throw new UserError('--release rolls out one group\'s release, and no GROUP was given', {
      hint: 'A release belongs to one group: name it, e.g. muster instance:deploy 12_04-bee --env production --release DIGEST. Nothing was written.',
    })
  }
  if (!DIGEST.test(release)) {
    throw new UserError(`--release ${JSON.stringify(release.slice(0, 80))}: expected a release digest (64 hex digits, lower case)`, {
      hint: `The full digest of the release a group runs: muster status ${group} --env ENV --json (.groups[0].registry.release), or muster deploy:status --env ENV --json (.request.releases). Nothing was written.`,
    })
  }
}

/**
 * The release --release names, read back from the bucket and checked: there, its bytes its digest,
 * a release of this group and of this fleet, and carrying the Chef environment it goes to.
 */
async function existingRelease(bucket: ReleaseBucket, releaseProject: string, group: Group, digest: string, environment: string | undefined): Promise<BuiltManifest> {
  const key = manifestKey(releaseProject, group.name, digest)
  const url = `s3://${bucket.bucket}/${key}`
  const refuse = (what: string, hint: string): UserError => new UserError(`release ${digest} of group ${group.name}: ${what}`, {hint: `${hint} Nothing was written.`})
  let bytes: Buffer
  try {
    bytes = await bucket.get(key, MANIFEST_CAP_BYTES)
  } catch (error) {
    if (error instanceof UserError && error.message === `${url} does not exist`) {
      throw refuse(`not in the release bucket ${bucket.bucket} (no ${url})`, `Check the digest (muster status ${group.name} --env ENV --json shows the release an environment runs) and that this environment uses the release bucket that environment deployed to (--bucket, MUSTER_RELEASE_BUCKET, release_bucket).`)
    }
    throw error
  }
  if (sha256Hex(bytes) !== digest) throw refuse(`${url} does not hold what its digest says (sha256 ${sha256Hex(bytes)})`, 'The object was changed in the bucket: deploy the group again to build a release, then promote that one.')
  const manifest = parseManifest(bytes)
  if (!manifest || manifest.group !== group.name || manifest.project !== releaseProject) throw refuse(`${url} is not a release manifest of group ${group.name} in project ${releaseProject}`, 'Give the digest of a release instance:deploy built for this group.')
  if (environment !== undefined && manifest.environments?.[environment] === undefined) {
    throw refuse(`it has no Chef environment "${environment}" (it was built before the nodes file declared it)`, `Deploy the group to ${environment} with a release built from the current nodes file (leave out --release).`)
  }
  return {manifest, bytes, digest}
}

/** The plan's cookbooks line for a promoted release: its tarball as the manifest names it. */
function promotedCookbooks(promoted: BuiltManifest | undefined): DeployPlan['cookbooks'] {
  const c = promoted?.manifest.cookbooks
  return c ? {sha256: c.sha256, bytes: c.bytes, url: c.url, files: 0} : null
}

/** The groups a deploy targets: the named one (which must have live nodes), or every group with live nodes. */
export function selectTargets(nodes: NodesFile, named: Group | undefined, live: ReadonlyMap<string, readonly string[]>): {groups: Group[]; unknownGroups: string[]} {
  if (named) {
    if ((live.get(named.name) ?? []).length === 0) {
      throw new UserError(`group ${named.name} has no live nodes in the registry`, {
        hint: `Nothing to deploy to: start its nodes (their agents register under nodes/), or check --etcd and --project (muster node:ls ${named.name}). Nothing was written.`,
      })
    }
    return {groups: [named], unknownGroups: []}
  }
  const known = nodeGroups(nodes)
  const groups = known.filter((g) => (live.get(g.name) ?? []).length > 0)
  const unknownGroups = [...live.keys()].filter((name) => !known.some((g) => g.name === name)).sort()
  if (groups.length === 0) {
    throw new UserError('no group of the nodes file has live nodes in the registry', {
      hint: 'Nothing to deploy to: start the nodes (their agents register under nodes/), or check --etcd and --project (muster node:ls). Nothing was written.',
    })
  }
  return {groups, unknownGroups}
}
