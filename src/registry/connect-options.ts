// Endpoints, project and credentials for the CLI's registry verbs, from flags and environment.
// With environments in the nodes file, src/actions/registry-target.ts decides the project.
import {UserError} from '../errors.js'
import {parseEndpoints} from './endpoint.js'
import {resolveProject} from './project.js'
import {type RegistrySecurity, resolveSecurity, securityInput} from './security.js'

export interface RegistryTarget {
  endpoints: string[]
  project: string
  security: RegistrySecurity
  /** The environment whose registry this is (absent without environments). */
  environment?: string
  /**
   * The project releases are filed under in the bucket (muster/PROJECT/…), the same in every
   * environment (releaseProject); `project` when absent.
   */
  releaseProject?: string
}

export interface RegistryFlagValues {
  etcd?: string | undefined
  project?: string | undefined
  'etcd-ca'?: string | undefined
  'etcd-cert'?: string | undefined
  'etcd-key'?: string | undefined
  'etcd-user'?: string | undefined
  'etcd-password-file'?: string | undefined
  /** --nodes (or MUSTER_NODES): the nodes file whose environments decide the project. */
  nodes?: string | undefined
  /** --env (or MUSTER_ENV). */
  env?: string | undefined
}

/**
 * The registry from flags and environment alone, as before environments: --etcd /
 * MUSTER_ETCD_ENDPOINTS and --project / MUSTER_PROJECT / Pulumi.yaml. The CLI's verbs go through
 * src/actions/registry-target.ts, which applies the nodes file's environments on top.
 */
export async function flagsRegistryTarget(flags: RegistryFlagValues, env: NodeJS.ProcessEnv, cwd: string): Promise<RegistryTarget> {
  const etcd = flags.etcd ?? env.MUSTER_ETCD_ENDPOINTS
  if (!etcd) throw new UserError('no registry endpoints', {hint: 'Give --etcd http://HOST:2379[,…] or set MUSTER_ETCD_ENDPOINTS.'})
  const endpoints = parseEndpoints(etcd, flags.etcd ? '--etcd' : 'MUSTER_ETCD_ENDPOINTS')
  const security = resolveSecurity(securityInput(flags, env), endpoints, env)
  return {endpoints, project: await resolveProject(flags.project, env, cwd), security}
}
