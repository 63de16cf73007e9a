// The agent's settings: flags over a JSON config file (what user data writes on a node) over
// defaults. Everything is checked here, at start, so a bad setting is one clear error and nothing
// is registered half-way.
import {readFileSync} from 'node:fs'

import {UserError} from '../errors.js'
import {parseEndpoints} from '../registry/endpoint.js'
import {pick, type RegistrySecurity, resolveSecurity, SECURITY_ENV, type SecurityInput} from '../registry/security.js'
import type {Wait} from './debounce.js'
import {HEALTH_DEFAULTS, type HealthTiming} from './health.js'
import {DEFAULT_PROVISION} from './provisioner.js'

export interface AgentInput {
  group?: string
  nodes?: string
  node?: string
  address?: string
  etcd?: string
  project?: string
  environment?: string
  releaseProject?: string
  provision?: string
  stateDir?: string
  statusAddr?: string
  ttl?: number
  wait?: string
  drain?: number
  dna?: string
  logFormat?: string
  etcdCa?: string
  etcdCert?: string
  etcdKey?: string
  etcdUser?: string
  etcdPasswordFile?: string
  haproxy?: string
  haproxySocket?: string
  haproxyReload?: string
  haproxyTemplate?: string
  haproxyBin?: string
  health?: string
}

export const CONFIG_KEYS: ReadonlyArray<keyof AgentInput> = ['group', 'nodes', 'node', 'address', 'etcd', 'project', 'environment', 'releaseProject', 'provision', 'stateDir', 'statusAddr', 'ttl', 'wait', 'drain', 'dna', 'logFormat', 'etcdCa', 'etcdCert', 'etcdKey', 'etcdUser', 'etcdPasswordFile', 'haproxy', 'haproxySocket', 'haproxyReload', 'haproxyTemplate', 'haproxyBin', 'health']

export const DEFAULTS = {ttlSeconds: 15, wait: '2s:10s', drainSeconds: 60}

export interface HostPort {
  host: string
  port: number
}

/** Settings after merging and checking; node and address may still come from IMDS. */
export interface AgentSettings {
  group: string
  nodes: string | undefined
  node: string | undefined
  address: string | undefined
  endpoints: string[]
  security: RegistrySecurity
  project: string | undefined
  /** The Chef environment chef-solo converges in (MUSTER_ENVIRONMENT for the provision command). */
  environment: string | undefined
  /** The project of the release bucket's keys and of release manifests (project when undefined). */
  releaseProject: string | undefined
  provision: string
  stateDir: string | undefined
  statusAddr: HostPort | undefined
  ttlSeconds: number
  wait: Wait
  drainMs: number
  dna: string | undefined
  logFormat: 'json' | 'text'
  haproxy: HaproxySettings | undefined
  health: HealthTiming
}

export interface HaproxySettings {
  /** Where the rendered config is installed. */
  configPath: string
  /** haproxy's master CLI socket: reloads and runtime API changes go through it. */
  socket: string | undefined
  /** A reload command instead of the master CLI (the runtime API still needs the socket). */
  reload: string | undefined
  /** The template; default templates/haproxy.cfg beside the nodes file, else muster's own. */
  template: string | undefined
  binary: string
}

const UNITS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}

/** `300ms`, `2s`, `1.5m`, `1h`; a bare number is seconds. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!match) throw new UserError(`${what}: ${JSON.stringify(text)} is not a duration`, {hint: 'Write durations as consul-template does: 300ms, 2s, 1m.'})
  return Math.round(Number(match[1]) * (UNITS[match[2] ?? 's'] as number))
}

/** `MIN:MAX` (`2s:10s`), or `MIN` alone, which gives MAX = 4 × MIN as consul-template does. */
export function parseWait(text: string, what = '--wait'): Wait {
  const parts = text.split(':')
  if (parts.length > 2) throw new UserError(`${what}: ${JSON.stringify(text)} is not MIN:MAX`, {hint: 'Example: --wait 2s:10s (quiet for 2 s, at most 10 s after the first change).'})
  const minMs = parseDuration(parts[0] as string, what)
  const maxMs = parts.length === 2 ? parseDuration(parts[1] as string, what) : minMs * 4
  if (maxMs < minMs) throw new UserError(`${what}: the maximum ${parts[1]} is below the minimum ${parts[0]}`, {hint: 'Give MIN:MAX with MIN ≤ MAX, e.g. 2s:10s.'})
  return {minMs, maxMs}
}

export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text)
  const port = match ? Number(match[2]) : NaN
  if (!match || port > 65_535) throw new UserError(`${what}: ${JSON.stringify(text)} is not HOST:PORT`, {hint: 'Example: --status-addr 127.0.0.1:9090 (port 0 picks a free one).'})
  return {host: (match[1] as string).replace(/^\[|\]$/g, ''), port}
}

/** Reads --config FILE: a JSON object with the flags' names in camelCase. */
export function readConfigFile(path: string): AgentInput {
  if (path === '') throw new UserError('--config is empty', {hint: 'Give the path of a JSON settings file, or leave --config out.'})
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new UserError(`cannot read the agent config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'Check the path given with --config.'})
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UserError(`${path}${jsonPlace(text, (error as Error).message)}: not valid JSON: ${(error as Error).message}`, {hint: 'Fix the JSON; the agent started nothing.'})
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${path}: expected a JSON object of settings`, {hint: `Keys: ${CONFIG_KEYS.join(', ')}.`})
  const input: AgentInput = {}
  for (const [key, v] of Object.entries(value)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new UserError(`${path}: ${key}: unknown setting`, {hint: `Settings: ${CONFIG_KEYS.join(', ')}.`})
    }
    const numeric = key === 'ttl' || key === 'drain'
    if (numeric ? typeof v !== 'number' : typeof v !== 'string') {
      throw new UserError(`${path}: ${key}: expected ${numeric ? 'a number of seconds' : 'a string'}, got ${JSON.stringify(v)}`, {hint: 'Fix the setting; the agent started nothing.'})
    }
    ;(input as Record<string, unknown>)[key] = v
  }
  return input
}

/** ":line:column" of a JSON.parse error message's "position N", when it has one. */
function jsonPlace(text: string, message: string): string {
  const match = /position (\d+)/.exec(message)
  if (!match) return ''
  const before = text.slice(0, Number(match[1])).split('\n')
  return `:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`
}

export function resolveSettings(flags: AgentInput, config: AgentInput, env: NodeJS.ProcessEnv): AgentSettings {
  const merged: AgentInput = {...config, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined))}
  if (!merged.group) throw new UserError('the agent needs its group', {hint: 'Give --group GROUP (or "group" in --config).'})
  const etcd = merged.etcd ?? env.MUSTER_ETCD_ENDPOINTS
  if (!etcd) throw new UserError('the agent needs the registry\'s endpoints', {hint: 'Give --etcd http://HOST:2379[,…] or set MUSTER_ETCD_ENDPOINTS.'})
  // Name where a bad value came from: the flag, or the key in the config file.
  const from = (key: keyof AgentInput, flag: string): string => (flags[key] !== undefined ? flag : `"${key}" in --config`)
  const ttlSeconds = merged.ttl ?? DEFAULTS.ttlSeconds
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 2 || ttlSeconds > 3600) throw new UserError(`${from('ttl', '--ttl')} ${ttlSeconds}: expected whole seconds from 2 to 3600`, {hint: 'The default is 15.'})
  const drain = merged.drain ?? DEFAULTS.drainSeconds
  if (!Number.isFinite(drain) || drain < 0 || drain > 86_400) throw new UserError(`${from('drain', '--drain')} ${drain}: expected seconds from 0 to 86400`, {hint: 'The default is 60.'})
  const logFormat = merged.logFormat ?? 'text'
  if (logFormat !== 'json' && logFormat !== 'text') throw new UserError(`${from('logFormat', '--log-format')} ${logFormat}: expected json or text`, {hint: 'json for journald pipelines, text for people.'})
  const endpoints = parseEndpoints(etcd, merged.etcd ? '--etcd' : 'MUSTER_ETCD_ENDPOINTS')
  const sourced = (key: 'etcdCa' | 'etcdCert' | 'etcdKey' | 'etcdUser' | 'etcdPasswordFile', flag: string, envName: string) =>
    pick(merged[key], from(key, flag), env, envName)
  const securityInput: SecurityInput = {}
  const entries = [
    ['ca', sourced('etcdCa', '--etcd-ca', SECURITY_ENV.ca)],
    ['cert', sourced('etcdCert', '--etcd-cert', SECURITY_ENV.cert)],
    ['key', sourced('etcdKey', '--etcd-key', SECURITY_ENV.key)],
    ['user', sourced('etcdUser', '--etcd-user', SECURITY_ENV.user)],
    ['passwordFile', sourced('etcdPasswordFile', '--etcd-password-file', SECURITY_ENV.passwordFile)],
  ] as const
  for (const [name, value] of entries) if (value !== undefined) securityInput[name] = value
  return {
    group: merged.group,
    nodes: merged.nodes,
    node: merged.node,
    address: merged.address,
    endpoints,
    security: resolveSecurity(securityInput, endpoints, env),
    project: merged.project,
    environment: merged.environment === undefined ? undefined : checkName(merged.environment, from('environment', '--environment'), 'the nodes file\'s environment names'),
    releaseProject: merged.releaseProject === undefined ? undefined : checkName(merged.releaseProject, from('releaseProject', '--release-project'), 'a registry project'),
    provision: merged.provision ?? DEFAULT_PROVISION,
    stateDir: merged.stateDir,
    statusAddr: merged.statusAddr === undefined ? undefined : parseHostPort(merged.statusAddr, from('statusAddr', '--status-addr')),
    ttlSeconds,
    wait: parseWait(merged.wait ?? DEFAULTS.wait, from('wait', '--wait')),
    drainMs: Math.round(drain * 1000),
    dna: merged.dna,
    logFormat,
    haproxy: haproxySettings(merged, from),
    health: merged.health === undefined ? HEALTH_DEFAULTS : parseHealthTiming(merged.health, from('health', '--health')),
  }
}

/**
 * An environment's or project's name, as the nodes file and the registry allow them: it reaches
 * chef-solo's command line and the bucket's keys, so nothing else gets through.
 */
function checkName(value: string, what: string, like: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(value)) throw new UserError(`${what}: ${JSON.stringify(value)} is not a usable name`, {hint: `Give ${like}: 1–128 of A–Z a–z 0–9 _ . - (no "/" or spaces). The agent started nothing.`})
  return value
}

function haproxySettings(merged: AgentInput, from: (key: keyof AgentInput, flag: string) => string): HaproxySettings | undefined {
  const given = (['haproxySocket', 'haproxyReload', 'haproxyTemplate', 'haproxyBin'] as const).find((k) => merged[k] !== undefined)
  if (merged.haproxy === undefined) {
    if (given) throw new UserError(`${from(given, `--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)} is an haproxy setting, but haproxy is off`, {hint: 'Give --haproxy PATH (where the agent installs the rendered config) to turn it on.'})
    return undefined
  }
  if (merged.haproxy === '' || merged.haproxy.endsWith('/')) throw new UserError(`${from('haproxy', '--haproxy')}: expected the path of the config file to install, got ${JSON.stringify(merged.haproxy)}`, {hint: 'Example: --haproxy /etc/haproxy/haproxy.cfg'})
  if (merged.haproxySocket === undefined && merged.haproxyReload === undefined) {
    throw new UserError(`${from('haproxy', '--haproxy')} needs a way to reach haproxy`, {
      hint: 'Give --haproxy-socket PATH (haproxy -W -S PATH: reloads and server changes without reloads), and/or --haproxy-reload CMD for reloads.',
    })
  }
  return {configPath: merged.haproxy, socket: merged.haproxySocket, reload: merged.haproxyReload, template: merged.haproxyTemplate, binary: merged.haproxyBin ?? 'haproxy'}
}

/** `inter=2s,timeout=1s,rise=2,fall=3`, any of them (haproxy's words); the rest keep their defaults. */
export function parseHealthTiming(text: string, what: string): HealthTiming {
  const timing = {...HEALTH_DEFAULTS}
  const hint = 'Example: --health inter=2s,timeout=1s,rise=2,fall=3 (the defaults, as haproxy\'s).'
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [key, value = ''] = part.split('=', 2) as [string, string?]
    if (key === 'inter' || key === 'timeout') {
      const ms = parseDuration(value, `${what} ${key}`)
      if (ms < 100 || ms > 3_600_000) throw new UserError(`${what} ${key}=${value}: expected 100ms to 1h`, {hint})
      timing[key === 'inter' ? 'intervalMs' : 'timeoutMs'] = ms
    } else if (key === 'rise' || key === 'fall') {
      const n = Number(value)
      if (!Number.isInteger(n) || n < 1 || n > 100) throw new UserError(`${what} ${key}=${value}: expected a whole number from 1 to 100`, {hint})
      timing[key] = n
    } else {
      throw new UserError(`${what}: unknown setting ${JSON.stringify(key)}`, {hint})
    }
  }
  if (timing.timeoutMs > timing.intervalMs) throw new UserError(`${what}: the timeout (${timing.timeoutMs} ms) is longer than the interval (${timing.intervalMs} ms)`, {hint})
  return timing
}
