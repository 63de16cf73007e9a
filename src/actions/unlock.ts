// muster unlock: clear a stack's lock that an update left behind (killed, or its session lost).
// It says who holds the lock and whether that process still runs (file backends name a pid and a
// host), refuses a lock whose holder still runs on this host unless forced, asks, then clears it
// with the engine's own `pulumi cancel` — run with muster's backend and passphrase, so it works on
// the embedded backend where a bare `pulumi cancel` asks for PULUMI_ACCESS_TOKEN.
import {UserError} from '../errors.js'
import {describeHolder, type LockHolder} from '../stacks/locks.js'
import {groupArgs} from '../stacks/workspace.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'

export interface UnlockOptions extends ProjectOptions {
  group: string
  previewOnly: boolean
  /** Clear a lock whose holder still runs on this host. */
  force: boolean
}

export interface UnlockResult {
  group: string
  /** The environment whose stack (GROUP.ENV) it is; absent without environments. */
  environment?: string
  /** The holders before clearing; undefined when the backend does not say. */
  holders: LockHolder[] | undefined
  cleared: boolean
  /** Operations an interrupted update left pending (the next step, if any). */
  pending: string[]
}

export async function unlock(options: UnlockOptions, io: IoHost): Promise<UnlockResult> {
  const project = new Project(options, io)
  const group = project.group(options.group)
  const stack = await project.session().require(group)
  const name = stack.name
  const args = groupArgs(group)
  const holders = stack.locks()
  const pending = await stack.pendingOperations()
  const which = {group: group.name, ...(group.environment === undefined ? {} : {environment: group.environment})}
  if (holders !== undefined && holders.length === 0) return {...which, holders, cleared: false, pending}
  io.progress(
    holders === undefined
      ? `${name}: this backend does not say who holds the lock; clearing it stops whatever update holds it from saving its state.`
      : `${name}: locked by ${holders.map(describeHolder).join('; ')}`,
  )
  const live = holders?.filter((h) => h.state === 'live') ?? []
  if (live.length > 0 && !options.force) {
    throw new UserError(`the lock of ${name} is held by a process that still runs on this host (pid ${live.map((h) => h.pid).join(', ')})`, {
      hint: `Wait for it to finish, or stop it with Ctrl-C (it releases the lock itself). To clear the lock anyway: muster unlock ${args} --force`,
    })
  }
  if (options.previewOnly) return {...which, holders, cleared: false, pending}
  await io.confirm({
    question: `Clear the lock of ${name}?`,
    unattended: {message: `clearing the lock of ${name} needs confirmation and there is no terminal`, hint: `Run: muster unlock ${args} --yes`},
    declined: {message: 'the lock was left in place'},
  })
  await stack.unlock()
  return {...which, holders, cleared: true, pending}
}
