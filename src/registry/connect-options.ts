// Endpoints and project for the CLI's registry verbs, from flags and environment.
import {UserError} from '../errors.js'
import {parseEndpoints} from './etcd.js'
import {resolveProject} from './project.js'

export interface RegistryTarget {
  endpoints: string[]
  project: string
}

export async function registryTarget(flags: {etcd?: string | undefined; project?: string | undefined}, env: NodeJS.ProcessEnv, cwd: string): Promise<RegistryTarget> {
  const etcd = flags.etcd ?? env.MUSTER_ETCD_ENDPOINTS
  if (!etcd) throw new UserError('no registry endpoints', {hint: 'Give --etcd http://HOST:2379[,…] or set MUSTER_ETCD_ENDPOINTS.'})
  const endpoints = parseEndpoints(etcd, flags.etcd ? '--etcd' : 'MUSTER_ETCD_ENDPOINTS')
  return {endpoints, project: await resolveProject(flags.project, env, cwd)}
}
