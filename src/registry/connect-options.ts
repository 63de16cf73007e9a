// Endpoints, project and credentials for the CLI's registry verbs, from flags and environment.
import {UserError} from '../errors.js'
import {parseEndpoints} from './endpoint.js'
import {resolveProject} from './project.js'
import {type RegistrySecurity, resolveSecurity, securityInput} from './security.js'

export interface RegistryTarget {
  endpoints: string[]
  project: string
  security: RegistrySecurity
}

export interface RegistryFlagValues {
  etcd?: string | undefined
  project?: string | undefined
  'etcd-ca'?: string | undefined
  'etcd-cert'?: string | undefined
  'etcd-key'?: string | undefined
  'etcd-user'?: string | undefined
  'etcd-password-file'?: string | undefined
}

export async function registryTarget(flags: RegistryFlagValues, env: NodeJS.ProcessEnv, cwd: string): Promise<RegistryTarget> {
  const etcd = flags.etcd ?? env.MUSTER_ETCD_ENDPOINTS
  if (!etcd) throw new UserError('no registry endpoints', {hint: 'Give --etcd http://HOST:2379[,…] or set MUSTER_ETCD_ENDPOINTS.'})
  const endpoints = parseEndpoints(etcd, flags.etcd ? '--etcd' : 'MUSTER_ETCD_ENDPOINTS')
  const security = resolveSecurity(securityInput(flags, env), endpoints, env)
  return {endpoints, project: await resolveProject(flags.project, env, cwd), security}
}
