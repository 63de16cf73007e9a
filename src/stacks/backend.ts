// Where Pulumi state lives, in the order a team grows through: PULUMI_BACKEND_URL, else
// Pulumi.yaml's backend.url, else the user's `pulumi login`, else the embedded default — a file
// backend in .muster/state with a generated passphrase file (0600), both git-ignored.
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {parse} from 'yaml'

import {atomicWriteSync} from '../lib/atomic-write.js'

export type BackendSource = 'env' | 'project' | 'login' | 'embedded'

export interface Backend {
  /** undefined when Pulumi finds it by itself (project setting or login). */
  url: string | undefined
  source: BackendSource
  /** Variables the pulumi processes need for this backend (never a secret's value). */
  env: Record<string, string>
  /** True when this call created the embedded backend: the first run says where state lives. */
  created: boolean
  /** Human description for messages. */
  describe: string
}

export const STATE_DIR = '.muster/state'
export const PASSPHRASE_FILE = '.muster/passphrase'

export function projectBackendUrl(root: string): string | undefined {
  const file = join(root, 'Pulumi.yaml')
  if (!existsSync(file)) return undefined
  const project = parse(readFileSync(file, 'utf8')) as {backend?: {url?: unknown}} | null
  return typeof project?.backend?.url === 'string' ? project.backend.url : undefined
}

function loggedIn(env: NodeJS.ProcessEnv): string | undefined {
  const home = env.PULUMI_HOME ?? join(homedir(), '.pulumi')
  const file = join(home, 'credentials.json')
  if (!existsSync(file)) return undefined
  try {
    const credentials = JSON.parse(readFileSync(file, 'utf8')) as {current?: unknown}
    return typeof credentials.current === 'string' && credentials.current !== '' ? credentials.current : undefined
  } catch {
    return undefined
  }
}

export function chooseBackend(root: string, env: NodeJS.ProcessEnv = process.env): Backend {
  const fromEnv = env.PULUMI_BACKEND_URL
  if (fromEnv) return {url: fromEnv, source: 'env', env: {}, created: false, describe: `${fromEnv} (PULUMI_BACKEND_URL)`}
  const fromProject = projectBackendUrl(root)
  if (fromProject) return {url: fromProject, source: 'project', env: {}, created: false, describe: `${fromProject} (Pulumi.yaml)`}
  const login = loggedIn(env)
  if (login) return {url: undefined, source: 'login', env: {}, created: false, describe: `${login} (pulumi login)`}
  return embeddedBackend(root, env)
}

function embeddedBackend(root: string, env: NodeJS.ProcessEnv): Backend {
  const state = join(root, STATE_DIR)
  const passphrase = join(root, PASSPHRASE_FILE)
  const created = !existsSync(state)
  mkdirSync(state, {recursive: true})
  // .muster/ holds state, the passphrase and bake manifests: never committed, whatever the
  // project's own .gitignore says.
  const ignore = join(root, '.muster', '.gitignore')
  if (!existsSync(ignore)) writeFileSync(ignore, '*\n')
  if (!existsSync(passphrase)) atomicWriteSync(passphrase, `${randomBytes(32).toString('base64url')}\n`, {mode: 0o600})
  const url = pathToFileURL(state).href
  const vars: Record<string, string> = {PULUMI_BACKEND_URL: url}
  // A passphrase the user set wins; otherwise the generated file.
  if (env.PULUMI_CONFIG_PASSPHRASE === undefined && env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined) vars.PULUMI_CONFIG_PASSPHRASE_FILE = passphrase
  return {url, source: 'embedded', env: vars, created, describe: `${STATE_DIR} (embedded file backend; passphrase in ${PASSPHRASE_FILE})`}
}
