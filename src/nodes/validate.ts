// Turns a parsed nodes document into the resolved model, or into every problem it has, each with
// its file:line:column, key path and what was expected.
import type {z} from 'zod'

import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Diagnostic} from '../errors.js'
import {unknownDependencies} from './dependencies.js'
import {inherit, isDict, uniqueRunList, type Plain} from './inherit.js'
import {BASE, type Group, type NodesFile} from './model.js'
import {GROUP_NAME, MAX_GROUP_NAME, type RawGroup, schemas, sizesInOrder} from './schema.js'
import type {KeyPath, SourceDocument} from './source.js'

/**
 * Packer source options muster sets itself and promises things about (the region and image a group
 * builds from, how images are named and tagged so retention and from_base find them, IMDSv2): a
 * group's packer dict may not override them. Each names what to use instead.
 */
export const MUSTER_OWNED_PACKER_OPTIONS: Readonly<Record<string, string>> = {
  region: 'set the group\'s "region" instead',
  source_ami: 'set the group\'s "source_ami" instead',
  source_ami_filter: 'set the group\'s "source_ami", or "from_base": true to build from the newest base image',
  instance_type: 'set the group\'s "instance_type" instead',
  ssh_username: 'set the group\'s "ssh_username" instead',
  ami_name: 'muster names images "GROUP TIMESTAMP" so retention can find them; remove it (the group name is the image name)',
  ami_description: 'set the group\'s "description" instead',
  tags: 'set the group\'s "tags" instead',
  run_tags: 'set the group\'s "tags" instead',
  metadata_options: 'muster requires IMDSv2 on the bake instance and its images; remove it',
  imds_support: 'muster requires IMDSv2 on the bake instance and its images; remove it',
  launch_block_device_mappings: 'set the group\'s "volume_size" instead',
}

type CompiledValidator = (value: unknown) => boolean
let compiled: CompiledValidator | null | undefined

/** dist/nodes/fast-validate.cjs, built by scripts/build-validator.mjs; absent when run from src/. */
export function fastValidator(): CompiledValidator | undefined {
  if (compiled === undefined) {
    const path = join(dirname(fileURLToPath(import.meta.url)), 'fast-validate.cjs')
    compiled = existsSync(path) ? (createRequire(import.meta.url)(path) as CompiledValidator) : null
  }
  return compiled ?? undefined
}

function autoscaleBoundsHold(group: unknown): boolean {
  const autoscale = isDict(group) ? group.autoscale : undefined
  // Only called on what the compiled validator accepted: node_min and node_max are whole numbers.
  return !isDict(autoscale) || sizesInOrder(autoscale as {node_min: number; node_max: number})
}

export type ValidationResult = {ok: true; nodes: NodesFile} | {ok: false; diagnostics: Diagnostic[]}

export function validateNodes(doc: SourceDocument): ValidationResult {
  if (doc.problems.length > 0) return {ok: false, diagnostics: doc.problems}
  const diagnostics: Diagnostic[] = []
  const report = (path: KeyPath, message: string, at: 'key' | 'value' = 'value'): void => {
    let position = at === 'key' ? doc.locateKey(path) : doc.locateValue(path)
    // A missing key has no place of its own: name the dict it is missing from.
    for (let up = path.length - 1; position === undefined && up >= 0; up--) position = doc.locateKey(path.slice(0, up))
    diagnostics.push({file: doc.file, path, message, position})
  }

  if (!isDict(doc.value)) {
    const empty = doc.value === null && doc.locateValue([]) === undefined
    diagnostics.push({
      file: doc.file,
      path: [],
      message: `expected a dict of node groups (e.g. {"__base__": {…}, "web": {…}}), got ${empty ? 'an empty file' : describe(doc.value)}`,
      position: doc.locateValue([]) ?? {line: 1, column: 1},
    })
    return {ok: false, diagnostics}
  }
  const raw = new Map<string, RawGroup>()
  const entries = Object.entries(doc.value)
  // Fast path: the compiled validator accepts the file (and the one rule JSON Schema cannot say
  // holds), so zod is never loaded. Anything it rejects goes through zod for the explanation.
  const fast = fastValidator()
  if (fast && entries.length > 0 && fast(doc.value) && entries.every(([, g]) => autoscaleBoundsHold(g))) {
    for (const [name, value] of entries) raw.set(name, value as RawGroup)
  }
  for (const [name, value] of raw.size > 0 ? [] : entries) {
    if (!GROUP_NAME.test(name)) {
      const tooLong = name.length > MAX_GROUP_NAME && /^[A-Za-z0-9_-]+$/.test(name)
      report(
        [name],
        tooLong
          ? `group names may be at most ${MAX_GROUP_NAME} characters, got ${name.length} (they become file, Pulumi stack, Auto Scaling group and AMI names); shorten it`
          : 'group names may only use letters, digits, "_" and "-" (they become Chef role and Pulumi stack names)',
        'key',
      )
      continue
    }
    const parsed = schemas().groupSchema.safeParse(value)
    if (parsed.success) raw.set(name, parsed.data)
    else for (const issue of parsed.error.issues) mapIssue(issue, [name], value, report)
  }
  if (Object.keys(doc.value).length === 0) report([], 'the nodes file defines no groups; add at least one group')
  for (const [name, group] of raw) {
    if (!isDict(group.packer)) continue
    for (const key of Object.keys(group.packer)) {
      const instead = MUSTER_OWNED_PACKER_OPTIONS[key]
      if (instead !== undefined) report([name, 'packer', key], `packer option "${key}" is set by muster; ${instead}`, 'key')
    }
  }
  if (diagnostics.length > 0) return {ok: false, diagnostics}

  const base = (raw.get(BASE) ?? {}) as Plain
  const groups = new Map<string, Group>()
  for (const [name, own] of raw) {
    const merged = name === BASE ? base : inherit(base, own as Plain)
    const group = resolve(name, merged as RawGroup, report)
    if (group) groups.set(name, group)
  }
  if (diagnostics.length > 0) return {ok: false, diagnostics}
  const nodes: NodesFile = {file: doc.file, groups}
  for (const problem of unknownDependencies(raw, nodes, didYouMean)) report(problem.path, problem.message)
  if (diagnostics.length > 0) return {ok: false, diagnostics}
  return {ok: true, nodes}
}

function resolve(name: string, g: RawGroup, report: (path: KeyPath, message: string, at?: 'key' | 'value') => void): Group | undefined {
  const missing = (key: string, example: string): void =>
    report([name], `no ${key}: set "${key}" (e.g. ${example}) in this group or in ${BASE}`, 'key')
  if (g.region === undefined) missing('region', '"us-east-1"')
  if (g.instance_type === undefined) missing('instance_type', '"m5.large"')
  const fromBase = g.from_base === true
  if (fromBase && name === BASE) report([name, 'from_base'], `${BASE} cannot build from itself; remove from_base here`)
  if (fromBase && g.packer === false) report([name, 'from_base'], 'from_base needs baking, but packer is false; remove one of them')
  if (!fromBase && g.source_ami === undefined) missing('source_ami', '"ami-1ebb2077"')
  if (g.region === undefined || g.instance_type === undefined) return undefined

  const group: Group = {
    name,
    description: g.description ?? '',
    autoscale: g.autoscale ?? false,
    type: g.type ?? 'amazon-ebs',
    region: g.region,
    instance_type: g.instance_type,
    from_base: fromBase,
    ssh_username: g.ssh_username ?? 'ubuntu',
    security_groups: [...new Set(g.security_groups ?? [])],
    subnets: g.subnets ?? [],
    tags: g.tags ?? {},
    default_attributes: g.default_attributes ?? {},
    override_attributes: g.override_attributes ?? {},
    run_list: uniqueRunList(g.run_list ?? []),
    post_run_list: uniqueRunList(g.post_run_list ?? []),
    packer: g.packer ?? {},
    services: g.services ?? {},
    service_cookbooks: [...new Set(g.service_cookbooks ?? [])],
    depends_on: [...new Set(g.depends_on ?? [])],
  }
  if (!fromBase && g.source_ami !== undefined) group.source_ami = g.source_ami
  if (g.volume_size !== undefined) group.volume_size = g.volume_size
  return group
}

type Report = (path: KeyPath, message: string, at?: 'key' | 'value') => void

function mapIssue(issue: z.core.$ZodIssue, prefix: KeyPath, groupValue: unknown, report: Report): void {
  const path = [...prefix, ...(issue.path as Array<string | number>)]
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(issue.path as Array<string | number>)
    for (const key of issue.keys) {
      const guess = didYouMean(key, known)
      report([...path, key], `unknown key "${key}"${guess ? `; did you mean "${guess}"?` : ''} (known keys: ${known.join(', ')})`, 'key')
    }
    return
  }
  if (issue.code === 'invalid_key') {
    // A record's key failed its own schema (a service name with a space): name the key itself.
    const key = String(path.at(-1))
    report(path, `${issue.issues[0]?.message ?? issue.message}, got ${JSON.stringify(key)}`, 'key')
    return
  }
  if (issue.code === 'invalid_union') {
    // A union of `false` and a dict: when the value is a dict, the dict branch's own problems are
    // the useful ones ("node_min: expected a whole number"), not "expected false or a dict".
    const deeper = issue.errors.find((branch) => branch.length > 0 && branch.every((i) => i.path.length > 0 || i.code === 'unrecognized_keys' || i.code === 'custom'))
    if (deeper && isDict(valueAt(groupValue, issue.path as Array<string | number>))) {
      for (const inner of deeper) mapIssue({...inner, path: [...(issue.path as PropertyKey[]), ...inner.path]} as z.core.$ZodIssue, prefix, groupValue, report)
      return
    }
  }
  const actual = valueAt(groupValue, issue.path as Array<string | number>)
  if (actual === undefined && issue.code === 'invalid_type') {
    report(path, `missing key "${String(path.at(-1))}": ${issue.message}`)
    return
  }
  const shown = ['invalid_type', 'invalid_union', 'invalid_value', 'invalid_format', 'too_small', 'too_big']
  const got = shown.includes(issue.code) ? `, got ${describe(actual)}` : ''
  report(path, `${issue.message}${got}`)
}

function knownKeysAt(path: ReadonlyArray<string | number>): string[] {
  if (path[0] === 'autoscale') return Object.keys(schemas().autoscaleSchema.shape)
  if (path[0] === 'services') return Object.keys(schemas().serviceSchema.shape)
  return [...Object.keys(schemas().groupSchema.shape)]
}

function valueAt(value: unknown, path: ReadonlyArray<string | number>): unknown {
  let current = value
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string | number, unknown>)[segment]
  }
  return current
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a dict'
  const text = JSON.stringify(value)
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`
}

/** The closest known key within a small edit distance, for "did you mean". */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(input.length / 3)) + 1
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost)
    }
    previous = current
  }
  return previous[b.length] ?? 0
}
