// The registry a CLI verb talks to: flags and environment (src/registry/connect-options.ts) and,
// when the nodes file declares environments, the environment selected (--env / MUSTER_ENV).
//
// Environments never see each other's services: each one's registry project is its own
// (registryProject in src/nodes/environments.ts: PROJECT.ENV, or the project it names), so every
// verb that reads or writes the registry decides the project through this one place. Without a
// nodes file, or with one that declares no environments, nothing changes: --etcd /
// MUSTER_ETCD_ENDPOINTS and --project / MUSTER_PROJECT / Pulumi.yaml, as before.
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {emptyEnvironmentName, registryProject, releaseProject} from '../nodes/environments.js'
import {loadNodes, NODES_FILE_NAMES} from '../nodes/load.js'
import type {NodesFile} from '../nodes/model.js'
import {flagsRegistryTarget, type RegistryFlagValues, type RegistryTarget} from '../registry/connect-options.js'
import {parseEndpoints} from '../registry/endpoint.js'
import {checkSegment} from '../registry/keys.js'
import {resolveProject} from '../registry/project.js'
import {resolveSecurity, securityInput} from '../registry/security.js'

/** The nodes file as seen from the environment asked for, or undefined when there is none to read (and none was asked for). */
export function registryScope(flags: Pick<RegistryFlagValues, 'nodes' | 'env'>, env: NodeJS.ProcessEnv, cwd: string): NodesFile | undefined {
  if (flags.env === '') throw emptyEnvironmentName()
  const explicit = flags.nodes !== undefined || Boolean(env.MUSTER_NODES)
  const here = NODES_FILE_NAMES.some((name) => existsSync(join(cwd, name)))
  if (!explicit && !here) {
    if (flags.env !== undefined && flags.env !== '') {
      throw new UserError(`--env ${flags.env}: there is no nodes file in ${cwd} to read its environments from`, {
        hint: 'Run this where nodes.json (or nodes.yaml) is, give --nodes PATH (or MUSTER_NODES), or leave out --env (and MUSTER_ENV). Nothing was read or written.',
      })
    }
    return undefined
  }
  // loadNodes says which file is missing or ambiguous, and refuses --env on a file without environments.
  return loadNodes({cwd, path: flags.nodes, env, environment: flags.env})
}

export async function registryTarget(flags: RegistryFlagValues, env: NodeJS.ProcessEnv, cwd: string): Promise<RegistryTarget> {
  const target = await optionalRegistryTarget(flags, env, cwd)
  if (target) return target
  throw new UserError('no registry endpoints', {hint: 'Give --etcd http://HOST:2379[,…] or set MUSTER_ETCD_ENDPOINTS.'})
}

/**
 * The registry to use, or undefined when no endpoints are given (flags, environment, or the
 * selected environment's registry in the nodes file). Verbs for which the registry is optional
 * (status) use this.
 */
export async function optionalRegistryTarget(flags: RegistryFlagValues, env: NodeJS.ProcessEnv, cwd: string): Promise<RegistryTarget | undefined> {
  const scope = registryScope(flags, env, cwd)
  const selected = scope?.environment === undefined ? undefined : scope
  if (!selected) return (flags.etcd ?? (env.MUSTER_ETCD_ENDPOINTS || undefined)) === undefined ? undefined : flagsRegistryTarget(flags, env, cwd)
  const given = flags.etcd ?? (env.MUSTER_ETCD_ENDPOINTS || undefined)
  // In an environment, its registry's endpoints (the nodes file's) serve when none are given.
  const fromFile = selected.registry?.endpoints
  if (given === undefined && fromFile === undefined) return undefined
  const endpoints = given !== undefined ? parseEndpoints(given, flags.etcd ? '--etcd' : 'MUSTER_ETCD_ENDPOINTS') : [...(fromFile as string[])]
  const security = resolveSecurity(securityInput(flags, env), endpoints, env)
  // The fallback (--project, MUSTER_PROJECT, Pulumi.yaml) is read only when the file names no project.
  let fallback: string | undefined
  const fallbackProject = async (): Promise<string> => (fallback ??= await resolveProject(flags.project, env, cwd))
  const named = selected.registry?.project
  const project = named ?? registryProject(selected, await fallbackProject())
  checkSegment(`the registry project of environment ${selected.environment}`, project, 'Name the environment\'s registry project in the nodes file (registry.project).')
  const fleet = selected.fleetProject ?? (await fallbackProject().catch(() => undefined))
  return {endpoints, project, security, environment: selected.environment as string, ...(fleet === undefined ? {} : {releaseProject: releaseProject(selected, fleet)})}
}
