// How muster proves itself to a locked registry: TLS (a CA to trust, and a client certificate and
// key when etcd asks for one) and etcd's own users. Every registry client (the agent, the CLI's
// registry verbs) resolves these the same way, from flags (or the agent's config file) over the
// environment. A password never comes from a flag: process lists and shell history show flags, so
// it comes from MUSTER_ETCD_PASSWORD or a file only its owner can read.
import {readFileSync, statSync} from 'node:fs'

import {UserError} from '../errors.js'

export interface RegistrySecurity {
  tls?: {ca?: Buffer; cert?: Buffer; key?: Buffer}
  auth?: {username: string; password: string}
}

/** One setting's value and where it came from (a flag, a config key or an env var), for errors. */
export interface Sourced {
  value: string
  source: string
}

export interface SecurityInput {
  ca?: Sourced
  cert?: Sourced
  key?: Sourced
  user?: Sourced
  passwordFile?: Sourced
}

export const SECURITY_ENV = {
  ca: 'MUSTER_ETCD_CA',
  cert: 'MUSTER_ETCD_CERT',
  key: 'MUSTER_ETCD_KEY',
  user: 'MUSTER_ETCD_USER',
  password: 'MUSTER_ETCD_PASSWORD',
  passwordFile: 'MUSTER_ETCD_PASSWORD_FILE',
} as const

/** The first of a flag's value and the env var's, with its source named. */
export function pick(flag: string | undefined, flagName: string, env: NodeJS.ProcessEnv, envName: string): Sourced | undefined {
  if (flag !== undefined) return {value: flag, source: flagName}
  const fromEnv = env[envName]
  return fromEnv === undefined || fromEnv === '' ? undefined : {value: fromEnv, source: envName}
}

function readSecretFile(setting: Sourced, what: string, private_: boolean): Buffer {
  try {
    if (private_ && (statSync(setting.value).mode & 0o007) !== 0) {
      throw new UserError(`${setting.source}: ${setting.value} can be read by every user on this machine`, {
        hint: `It holds a ${what}: make it readable by its owner only (chmod 600 ${setting.value}).`,
      })
    }
    return readFileSync(setting.value)
  } catch (error) {
    if (error instanceof UserError) throw error
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : code === 'EISDIR' ? 'is a directory' : `could not be read (${code ?? (error as Error).message})`
    throw new UserError(`${setting.source}: the ${what} file ${setting.value} ${why}`, {hint: `Give ${setting.source} the path of the ${what} (PEM).`})
  }
}

/**
 * Checks the settings against each other and the endpoints and reads the files. Errors name the
 * setting as the user gave it.
 */
export function resolveSecurity(input: SecurityInput, endpoints: readonly string[], env: NodeJS.ProcessEnv): RegistrySecurity {
  const security: RegistrySecurity = {}
  const {ca, cert, key, user, passwordFile} = input
  if ((cert === undefined) !== (key === undefined)) {
    const given = (cert ?? key) as Sourced
    throw new UserError(`${given.source} needs its pair: a client certificate and its key go together`, {
      hint: 'Give both --etcd-cert and --etcd-key (or MUSTER_ETCD_CERT and MUSTER_ETCD_KEY).',
    })
  }
  const plain = endpoints.filter((e) => e.startsWith('http://'))
  if ((ca ?? cert) !== undefined && plain.length > 0) {
    throw new UserError(`${(ca ?? cert as Sourced).source} is a TLS setting, but ${plain[0]} is a plain http:// endpoint`, {
      hint: 'Write the etcd endpoints as https://HOST:PORT when etcd serves TLS.',
    })
  }
  if (ca !== undefined || cert !== undefined) {
    security.tls = {
      ...(ca ? {ca: readSecretFile(ca, 'CA certificate', false)} : {}),
      ...(cert && key ? {cert: readSecretFile(cert, 'client certificate', false), key: readSecretFile(key, 'client key', true)} : {}),
    }
  } else if (endpoints.some((e) => e.startsWith('https://'))) {
    // https:// with no CA given: the system's trusted CAs, as curl does.
    security.tls = {}
  }
  const password = env[SECURITY_ENV.password]
  if (user !== undefined) {
    if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(user.value)) {
      throw new UserError(`${user.source}: ${JSON.stringify(user.value)} is not an etcd user name muster accepts`, {hint: 'Use 1–128 of A–Z a–z 0–9 _ . @ -.'})
    }
    let secret: string | undefined
    if (passwordFile !== undefined) secret = readSecretFile(passwordFile, 'password', true).toString('utf8').replace(/\r?\n$/, '')
    else if (password !== undefined && password !== '') secret = password
    if (secret === undefined || secret === '') {
      throw new UserError(`${user.source} names etcd user ${user.value} but no password was given`, {
        hint: `Set ${SECURITY_ENV.password}, or give --etcd-password-file FILE (${SECURITY_ENV.passwordFile}); passwords are never flags.`,
      })
    }
    security.auth = {username: user.value, password: secret}
  } else if (passwordFile !== undefined || (password !== undefined && password !== '')) {
    throw new UserError(`an etcd password was given (${passwordFile?.source ?? SECURITY_ENV.password}) but no user`, {
      hint: `Give --etcd-user NAME (or ${SECURITY_ENV.user}).`,
    })
  }
  return security
}

/** The settings' sources from the CLI's flags (named as flags) and the environment. */
export function securityInput(
  flags: {'etcd-ca'?: string | undefined; 'etcd-cert'?: string | undefined; 'etcd-key'?: string | undefined; 'etcd-user'?: string | undefined; 'etcd-password-file'?: string | undefined},
  env: NodeJS.ProcessEnv,
): SecurityInput {
  const input: SecurityInput = {}
  const set = (name: keyof SecurityInput, value: Sourced | undefined): void => {
    if (value !== undefined) input[name] = value
  }
  set('ca', pick(flags['etcd-ca'], '--etcd-ca', env, SECURITY_ENV.ca))
  set('cert', pick(flags['etcd-cert'], '--etcd-cert', env, SECURITY_ENV.cert))
  set('key', pick(flags['etcd-key'], '--etcd-key', env, SECURITY_ENV.key))
  set('user', pick(flags['etcd-user'], '--etcd-user', env, SECURITY_ENV.user))
  set('passwordFile', pick(flags['etcd-password-file'], '--etcd-password-file', env, SECURITY_ENV.passwordFile))
  return input
}
