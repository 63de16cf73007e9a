// The agent's command-line options, as data: `muster agent` (oclif) and the agent's bundle
// (dist/agent/muster-agent.mjs, parsed with node:util) take exactly these, and each maps to the
// config file's key of the same name in camelCase.
import {parseArgs} from 'node:util'

import {UserError} from '../errors.js'
import {type OptionSpec, REGISTRY_OPTIONS} from '../registry/options.js'
import type {AgentInput} from './settings.js'

export const AGENT_OPTIONS: readonly OptionSpec[] = [
  {flag: 'config', kind: 'string', description: 'JSON settings (as user data writes them); flags override it.', helpValue: 'FILE'},
  {flag: 'group', kind: 'string', description: 'This node\'s group.', helpValue: 'GROUP'},
  {flag: 'nodes', kind: 'string', description: 'Path of the nodes file (default: MUSTER_NODES, else nodes.json or nodes.yaml in the working directory).', helpValue: 'PATH'},
  {flag: 'node', kind: 'string', description: 'This node\'s id (default on EC2: the instance id, from IMDSv2).', helpValue: 'ID'},
  {flag: 'address', kind: 'string', description: 'Address other nodes reach this node at (default on EC2: the private IPv4).', helpValue: 'ADDR'},
  ...REGISTRY_OPTIONS,
  {flag: 'environment', kind: 'string', description: 'The Chef environment this node converges in (chef-solo --environment), as the nodes file\'s "__environments__" names it; the user data sets it.', helpValue: 'NAME'},
  {flag: 'release-project', kind: 'string', description: 'The project releases are filed under in the release bucket (default: --project); with environments, the fleet\'s project, which they share.', helpValue: 'NAME'},
  {flag: 'provision', kind: 'string', description: 'Provision command, run with /bin/sh -c (default: chef-solo with /etc/muster/solo.rb and the attributes file).', helpValue: 'CMD'},
  {flag: 'state-dir', kind: 'string', description: 'Where the attributes file and provision log live (default: .muster/agent/NODE).', helpValue: 'DIR'},
  {flag: 'status-addr', kind: 'string', description: 'Serve GET /health and GET /metrics here.', helpValue: 'HOST:PORT'},
  {flag: 'ttl', kind: 'integer', description: 'Lease TTL in seconds: how long registrations outlive a dead agent (default 15).', helpValue: 'SECONDS'},
  {flag: 'wait', kind: 'string', description: 'Quiet period and cap before re-provisioning, as consul-template writes it (default 2s:10s).', helpValue: 'MIN:MAX'},
  {flag: 'drain', kind: 'integer', description: 'Seconds to wait for dependents to let go of a removed service (default 60).', helpValue: 'SECONDS'},
  {flag: 'dna', kind: 'string', description: 'The node\'s dna (default: dna/instances/GROUP-NODE.json, else dna/asg/GROUP.json beside the nodes file).', helpValue: 'FILE'},
  {flag: 'log-format', kind: 'string', description: 'Log lines on stderr as text or json.', helpValue: 'text|json'},
  {flag: 'health', kind: 'string', description: 'Health checks of services with a health_check: inter=2s,timeout=1s,rise=2,fall=3 (the defaults, as haproxy\'s).', helpValue: 'K=V,…'},
  {flag: 'haproxy', kind: 'string', description: 'Render haproxy\'s config from the registry (templates/haproxy.cfg) and install it here.', helpValue: 'PATH'},
  {flag: 'haproxy-socket', kind: 'string', description: 'haproxy\'s master CLI socket (haproxy -W -S PATH): reloads, and server changes without a reload.', helpValue: 'PATH'},
  {flag: 'haproxy-reload', kind: 'string', description: 'Command that reloads haproxy, instead of the master CLI (e.g. "systemctl reload haproxy").', helpValue: 'CMD'},
  {flag: 'haproxy-template', kind: 'string', description: 'The haproxy template (default: templates/haproxy.cfg beside the nodes file, else muster\'s).', helpValue: 'FILE'},
  {flag: 'haproxy-bin', kind: 'string', description: 'The haproxy binary that checks configs (default: haproxy on PATH).', helpValue: 'PATH'},
]

/** "state-dir" → "stateDir": the config file's key for a flag. */
export const configKey = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** Flag values (strings, and numbers for integer options) as the settings' input, plus --config. */
export function agentInput(values: Readonly<Record<string, string | number | boolean | undefined>>, env: NodeJS.ProcessEnv): {input: AgentInput; config: string | undefined} {
  const input: Record<string, string | number> = {}
  for (const spec of AGENT_OPTIONS) {
    const value = values[spec.flag]
    if (spec.flag === 'config' || value === undefined || typeof value === 'boolean') continue
    input[configKey(spec.flag)] = value
  }
  if (input.nodes === undefined && env.MUSTER_NODES) input.nodes = env.MUSTER_NODES
  const config = values.config
  return {input: input as AgentInput, config: typeof config === 'string' ? config : undefined}
}

/** The bundle's own argv parsing (node:util): the same options, and the same errors a user gets from oclif. */
export function parseAgentArgv(argv: readonly string[]): {values: Record<string, string | number | boolean | undefined>; help: boolean; version: boolean} {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(AGENT_OPTIONS.map((s) => [s.flag, {type: 'string' as const}])),
        help: {type: 'boolean', short: 'h'},
        version: {type: 'boolean'},
      },
    })
  } catch (error) {
    throw new UserError((error as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''), {hint: 'Run with --help for the options.', exitCode: 64})
  }
  const values: Record<string, string | number | boolean | undefined> = {...parsed.values}
  for (const spec of AGENT_OPTIONS) {
    const raw = values[spec.flag]
    if (spec.kind !== 'integer' || typeof raw !== 'string') continue
    if (!/^-?\d+$/.test(raw)) throw new UserError(`--${spec.flag}: expected an integer, got ${JSON.stringify(raw)}`, {hint: 'Run with --help for the options.', exitCode: 64})
    values[spec.flag] = Number(raw)
  }
  return {values, help: values.help === true, version: values.version === true}
}

export function agentUsage(): string {
  const lines = ['Usage: muster-agent [OPTIONS]', '', 'The muster node agent: registers this node\'s services in etcd and re-provisions when its dependencies change.', '', 'Options:']
  for (const s of AGENT_OPTIONS) lines.push(`  --${s.flag} ${s.helpValue}`.padEnd(34) + s.description)
  lines.push('  -h, --help'.padEnd(34) + 'Show this help.', '  --version'.padEnd(34) + 'Show the version.', '', 'More: `muster help agent` on a machine with the muster CLI, or the README.')
  return `${lines.join('\n')}\n`
}
