// Where Pulumi state lives, in the order a team grows through: PULUMI_BACKEND_URL, else
// Pulumi.yaml's backend.url, else the user's `pulumi login`, else the embedded default — a file
// backend in .muster/state with a generated passphrase file (0600), both git-ignored.
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {parse} from 'yaml'

import {UserError} from '../errors.js'
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
  /** How new stacks keep their secrets (existing stacks keep what they were created with). */
  secrets: SecretsChoice
}

/**
 * A stack's secrets (the encryption of `--secret` config values and of secret outputs) need a key
 * from somewhere: Pulumi Cloud keeps one per stack; a file or S3 backend needs a passphrase every
 * operator shares (PULUMI_CONFIG_PASSPHRASE/_FILE) or a cloud secrets provider the team chooses
 * (awskms://, gcpkms://, azurekeyvault://, hashivault://), which takes no shared secret at all.
 */
export interface SecretsChoice {
  /** What `pulumi stack init --secrets-provider` gets; undefined: the backend's default. */
  provider: string | undefined
  /** Where the choice came from, for messages. */
  source: 'MUSTER_SECRETS_PROVIDER' | 'Pulumi.yaml muster.secretsProvider' | 'embedded backend' | 'backend default'
  /** New stacks will need PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE. */
  needsPassphrase: boolean
  /** Whether the environment the engine gets holds a passphrase. */
  passphraseSet: boolean
}

export const SECRETS_PROVIDER_ENV = 'MUSTER_SECRETS_PROVIDER'
export const PROJECT_SECRETS_KEY = 'muster.secretsProvider'
const PROVIDER_SHAPE = /^(passphrase|default|(awskms|gcpkms|azurekeyvault|hashivault):\/\/\S+)$/

/** Pulumi.yaml's `muster: {secretsProvider: …}` (Pulumi ignores keys it does not know). */
export function projectSecretsProvider(root: string): string | undefined {
  const file = join(root, 'Pulumi.yaml')
  if (!existsSync(file)) return undefined
  const project = parse(readFileSync(file, 'utf8')) as {muster?: {secretsProvider?: unknown}} | null
  const value = project?.muster?.secretsProvider
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw badProvider(String(value), `${file}: ${PROJECT_SECRETS_KEY}`)
  return value
}

function badProvider(value: string, where: string): UserError {
  return new UserError(`${where} is "${value}", which is not a Pulumi secrets provider`, {
    hint: 'Use passphrase, or a cloud key: awskms://KEY_ID_OR_alias/NAME?region=REGION, gcpkms://projects/…/cryptoKeys/…, azurekeyvault://VAULT.vault.azure.net/keys/KEY, hashivault://KEY.',
  })
}

/** The secrets provider new stacks get, from the environment, Pulumi.yaml or the backend. */
export function chooseSecrets(root: string, env: NodeJS.ProcessEnv, backend: {source: BackendSource; url: string | undefined; passphraseSet: boolean}): SecretsChoice {
  const fromEnv = env[SECRETS_PROVIDER_ENV] || undefined
  const fromProject = fromEnv === undefined ? projectSecretsProvider(root) : undefined
  const chosen = fromEnv ?? fromProject
  if (chosen !== undefined && !PROVIDER_SHAPE.test(chosen)) throw badProvider(chosen, fromEnv !== undefined ? SECRETS_PROVIDER_ENV : `Pulumi.yaml ${PROJECT_SECRETS_KEY}`)
  const cloud = /^https?:\/\//.test(backend.url ?? '')
  const source: SecretsChoice['source'] = fromEnv !== undefined ? SECRETS_PROVIDER_ENV : fromProject !== undefined ? 'Pulumi.yaml muster.secretsProvider' : backend.source === 'embedded' ? 'embedded backend' : 'backend default'
  const provider = chosen === 'default' ? undefined : (chosen ?? (backend.source === 'embedded' ? 'passphrase' : undefined))
  const needsPassphrase = provider === 'passphrase' || (provider === undefined && !cloud)
  return {provider, source, needsPassphrase, passphraseSet: backend.passphraseSet}
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
  const passphraseSet = env.PULUMI_CONFIG_PASSPHRASE !== undefined || env.PULUMI_CONFIG_PASSPHRASE_FILE !== undefined
  const withSecrets = (backend: Omit<Backend, 'secrets'>, url: string | undefined): Backend => ({
    ...backend,
    secrets: chooseSecrets(root, env, {source: backend.source, url, passphraseSet: passphraseSet || backend.env.PULUMI_CONFIG_PASSPHRASE_FILE !== undefined}),
  })
  const fromEnv = env.PULUMI_BACKEND_URL
  if (fromEnv) return withSecrets({url: fromEnv, source: 'env', env: {}, created: false, describe: `${fromEnv} (PULUMI_BACKEND_URL)`}, fromEnv)
  const fromProject = projectBackendUrl(root)
  if (fromProject) return withSecrets({url: fromProject, source: 'project', env: {}, created: false, describe: `${fromProject} (Pulumi.yaml)`}, fromProject)
  const login = loggedIn(env)
  if (login) return withSecrets({url: undefined, source: 'login', env: {}, created: false, describe: `${login} (pulumi login)`}, login)
  const embedded = embeddedBackend(root, env)
  return withSecrets(embedded, embedded.url)
}

/** Why a new stack cannot be made on this backend as things are set, or undefined when it can. */
export function newStackRefusal(backend: Backend, group: string): UserError | undefined {
  if (!backend.secrets.needsPassphrase || backend.secrets.passphraseSet) return undefined
  return new UserError(`cannot create the stack of ${group} on ${backend.describe}: its secrets need a passphrase or a cloud secrets provider, and neither is set`, {
    hint: [
      'A team backend needs one of these, the same for everyone who runs muster on it:',
      '  - a cloud secrets provider (no shared secret): MUSTER_SECRETS_PROVIDER=awskms://alias/NAME?region=REGION, or in Pulumi.yaml "muster: {secretsProvider: awskms://…}" (your AWS credentials must be allowed to use the key);',
      '  - a shared passphrase from the environment: PULUMI_CONFIG_PASSPHRASE, or PULUMI_CONFIG_PASSPHRASE_FILE naming a file that holds it.',
      'Nothing was created.',
    ].join('\n'),
  })
}

function embeddedBackend(root: string, env: NodeJS.ProcessEnv): Omit<Backend, 'secrets'> {
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
