// registry:init: lock a project's registry down. Roles and users come from the pure plan in
// src/registry/access.ts; new passwords go to files of mode 600 (never to stdout or a log), one
// per user, for the operator to hand to agents (their config's etcdPasswordFile) and to CI.
import {mkdir} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {UserError} from '../errors.js'
import {atomicWrite} from '../lib/atomic-write.js'
import {type AccessAdmin, type AccessStep, accessPlan, agentUser, applyAccess, operatorUser} from '../registry/access.js'
import type {RegistryTarget} from '../registry/connect-options.js'
import {openAccessAdmin} from '../registry/etcd-access.js'
import {explainRegistryFailure} from '../registry/read.js'
import type {IoHost} from './io.js'

export interface RegistryInitOptions {
  target: RegistryTarget
  cwd: string
  /** Where new passwords are written (default .muster/registry, git-ignored). */
  outDir: string | undefined
  rotate: boolean
  enableAuth: boolean
}

export interface RegistryInitResult {
  project: string
  agentUser: string
  operatorUser: string
  steps: AccessStep[]
  passwordDir: string
}

export async function registryInit(options: RegistryInitOptions, io: IoHost, open: (t: RegistryTarget) => AccessAdmin & {close(): void} = defaultOpen): Promise<RegistryInitResult> {
  const {target} = options
  const passwordDir = resolve(options.cwd, options.outDir ?? join('.muster', 'registry'))
  if (options.enableAuth) {
    await io.confirm({
      question: `Enable authentication on etcd at ${target.endpoints.join(', ')}? Every client of this etcd (all projects) will need a user from then on.`,
      unattended: {message: '--enable-auth changes who may use this etcd at all and needs confirmation', hint: 'Run it in a terminal, or add --yes.'},
      declined: {message: 'nothing was changed'},
    })
  }
  const admin = open(target)
  try {
    const steps = await applyAccess(admin, accessPlan(target.project), {
      rotate: options.rotate,
      enableAuth: options.enableAuth,
      newPassword: async (user, password) => {
        const path = join(passwordDir, `${user}.password`)
        try {
          await mkdir(passwordDir, {recursive: true, mode: 0o700})
          await atomicWrite(path, `${password}\n`, {mode: 0o600})
        } catch (error) {
          throw new UserError(`cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'Give --out a directory this user can write; nothing was created for this user.'})
        }
        return path
      },
    })
    return {project: target.project, agentUser: agentUser(target.project), operatorUser: operatorUser(target.project), steps, passwordDir}
  } catch (error) {
    if (error instanceof UserError) throw error
    throw await explainRegistryFailure(error as Error, target.endpoints, target.security, 'Setting up users needs etcd\'s root user (or one with the root role) once auth is on: --etcd-user root with MUSTER_ETCD_PASSWORD.')
  } finally {
    admin.close()
  }
}

const defaultOpen = (target: RegistryTarget): AccessAdmin & {close(): void} => openAccessAdmin({endpoints: target.endpoints, security: target.security, callTimeoutMs: 5000})
