// AccessAdmin on etcd's auth API through the etcd3 client: the only other module besides etcd.ts
// that knows the client library.
import {Etcd3, Range} from 'etcd3'

import type {AccessAdmin, Grant, Permission} from './access.js'
import {etcdClientOptions, type EtcdOptions} from './etcd.js'

const TO_ETCD = {read: 'Read', write: 'Write', readwrite: 'Readwrite'} as const
const FROM_ETCD: Record<string, Permission> = {Read: 'read', Write: 'write', Readwrite: 'readwrite'}

function toRange(grant: Grant): Range {
  return grant.end === undefined ? Range.prefix(grant.prefix) : new Range(grant.prefix, grant.end)
}

function fromRange(permission: string, range: Range): Grant {
  const start = range.start.toString('utf8')
  const asPrefix = Range.prefix(range.start)
  const grant: Grant = {permission: FROM_ETCD[permission] ?? 'read', prefix: start}
  if (!asPrefix.end.equals(range.end)) grant.end = range.end.toString('utf8')
  return grant
}

export function openAccessAdmin(options: EtcdOptions): AccessAdmin & {close(): void} {
  const client = new Etcd3(etcdClientOptions(options))
  return {
    roles: async () => (await client.getRoles()).map((r) => r.name),
    users: async () => (await client.getUsers()).map((u) => u.name),
    createRole: async (name) => {
      await client.role(name).create()
    },
    grants: async (role) => (await client.role(role).permissions()).map((p) => fromRange(p.permission, p.range)),
    grant: async (role, grant) => {
      await client.role(role).grant({permission: TO_ETCD[grant.permission], range: toRange(grant)})
    },
    revoke: async (role, grant) => {
      await client.role(role).revoke({permission: TO_ETCD[grant.permission], range: toRange(grant)})
    },
    createUser: async (name, password) => {
      await client.user(name).create(password)
    },
    setPassword: async (name, password) => {
      await client.user(name).setPassword(password)
    },
    userRoles: async (name) => (await client.user(name).roles()).map((r) => r.name),
    addRole: async (user, role) => {
      await client.user(user).addRole(role)
    },
    enableAuth: async () => {
      await client.auth.authEnable({})
    },
    close: () => client.close(),
  }
}
