// Who may write what in a project's registry: the roles and users `muster registry:init` keeps in
// etcd. The plan is pure (and is the threat model's ground truth, see docs/SECURITY.md); applying
// it goes through the AccessAdmin interface, which etcd-access.ts implements on the etcd client.
//
// etcd grants key ranges and has no deny, so the layout decides what can be kept apart: agents
// write services/, nodes/ and rollout/ (their deploy progress) and read the whole project;
// operators also write deploys/ (requests) and groups/ (current releases). A node can therefore
// never choose what the fleet converges.
import {randomBytes} from 'node:crypto'

import {nodesPrefix, projectPrefix, servicesPrefix} from './keys.js'
import {rolloutsPrefix} from './deploys.js'

export type Permission = 'read' | 'write' | 'readwrite'

export interface Grant {
  permission: Permission
  /** A key prefix; the grant covers every key under it. */
  prefix: string
  /** Set when etcd holds a range that is not one prefix (made by hand): [prefix, end). */
  end?: string
}

export interface RolePlan {
  name: string
  grants: Grant[]
}

export interface AccessPlan {
  roles: RolePlan[]
  users: Array<{name: string; role: string}>
}

export const agentUser = (project: string): string => `muster-${project}-agent`
export const operatorUser = (project: string): string => `muster-${project}-operator`

export function accessPlan(project: string): AccessPlan {
  const agent = agentUser(project)
  const operator = operatorUser(project)
  return {
    roles: [
      {
        name: agent,
        grants: [
          {permission: 'read', prefix: projectPrefix(project)},
          {permission: 'readwrite', prefix: servicesPrefix(project)},
          {permission: 'readwrite', prefix: nodesPrefix(project)},
          {permission: 'readwrite', prefix: rolloutsPrefix(project)},
        ],
      },
      {name: operator, grants: [{permission: 'readwrite', prefix: projectPrefix(project)}]},
    ],
    users: [
      {name: agent, role: agent},
      {name: operator, role: operator},
    ],
  }
}

/** What registry:init did, one line each, in order. */
export interface AccessStep {
  action: 'created' | 'granted' | 'revoked' | 'unchanged' | 'enabled' | 'password'
  subject: string
  detail: string
}

/** The few etcd auth calls registry:init needs. */
export interface AccessAdmin {
  roles(): Promise<string[]>
  users(): Promise<string[]>
  createRole(name: string): Promise<void>
  grants(role: string): Promise<Grant[]>
  grant(role: string, grant: Grant): Promise<void>
  revoke(role: string, grant: Grant): Promise<void>
  createUser(name: string, password: string): Promise<void>
  setPassword(name: string, password: string): Promise<void>
  userRoles(name: string): Promise<string[]>
  addRole(user: string, role: string): Promise<void>
  enableAuth(): Promise<void>
}

export interface ApplyOptions {
  /** Gives a new user's password to the caller, which stores it (never printed). Resolves with where. */
  newPassword(user: string, password: string): Promise<string>
  rotate: boolean
  enableAuth: boolean
}

const sameGrant = (a: Grant, b: Grant): boolean => a.permission === b.permission && a.prefix === b.prefix && a.end === b.end
const describeGrant = (g: Grant): string => (g.end === undefined ? `${g.permission} ${g.prefix}*` : `${g.permission} [${g.prefix}, ${g.end})`)

/** Brings etcd to the plan: creates what is missing, revokes grants the plan does not hold. */
export async function applyAccess(admin: AccessAdmin, plan: AccessPlan, options: ApplyOptions): Promise<AccessStep[]> {
  const steps: AccessStep[] = []
  const roles = new Set(await admin.roles())
  for (const role of plan.roles) {
    if (!roles.has(role.name)) {
      await admin.createRole(role.name)
      steps.push({action: 'created', subject: `role ${role.name}`, detail: ''})
    }
    const current = roles.has(role.name) ? await admin.grants(role.name) : []
    for (const grant of role.grants) {
      if (current.some((g) => sameGrant(g, grant))) continue
      await admin.grant(role.name, grant)
      steps.push({action: 'granted', subject: `role ${role.name}`, detail: describeGrant(grant)})
    }
    for (const extra of current.filter((g) => !role.grants.some((w) => sameGrant(w, g)))) {
      await admin.revoke(role.name, extra)
      steps.push({action: 'revoked', subject: `role ${role.name}`, detail: describeGrant(extra)})
    }
    if (roles.has(role.name) && !steps.some((s) => s.subject === `role ${role.name}`)) steps.push({action: 'unchanged', subject: `role ${role.name}`, detail: role.grants.map(describeGrant).join(', ')})
  }
  const users = new Set(await admin.users())
  const needed = [...plan.users]
  if (options.enableAuth) needed.push({name: 'root', role: 'root'})
  for (const user of needed) {
    if (!users.has(user.name)) {
      // The password is stored before the user exists: a failure in between leaves a file for no
      // user (harmless), never a user whose password nobody has.
      const password = randomPassword()
      const where = await options.newPassword(user.name, password)
      await admin.createUser(user.name, password)
      steps.push({action: 'created', subject: `user ${user.name}`, detail: `password in ${where}`})
    } else if (options.rotate && user.name !== 'root') {
      const password = randomPassword()
      const where = await options.newPassword(user.name, password)
      await admin.setPassword(user.name, password)
      steps.push({action: 'password', subject: `user ${user.name}`, detail: `new password in ${where}`})
    }
    const has = await admin.userRoles(user.name)
    if (!has.includes(user.role)) {
      await admin.addRole(user.name, user.role)
      steps.push({action: 'granted', subject: `user ${user.name}`, detail: `role ${user.role}`})
    } else if (!steps.some((s) => s.subject === `user ${user.name}`)) {
      steps.push({action: 'unchanged', subject: `user ${user.name}`, detail: `role ${user.role}`})
    }
  }
  if (options.enableAuth) {
    await admin.enableAuth()
    steps.push({action: 'enabled', subject: 'etcd authentication', detail: 'every client now needs a user'})
  }
  return steps
}

function randomPassword(): string {
  return randomBytes(24).toString('base64url')
}
