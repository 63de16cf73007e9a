// Resolving a locked registry's settings: pairs that go together, TLS only on https://, passwords
// never from a flag and never from a file everyone can read, errors that name the setting.
import {expect} from 'chai'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../../src/errors.js'
import {type AccessAdmin, accessPlan, applyAccess, type Grant} from '../../src/registry/access.js'
import {retireKey} from '../../src/registry/keys.js'
import {resolveSecurity, securityInput} from '../../src/registry/security.js'

const HTTPS = ['https://127.0.0.1:2379']
const HTTP = ['http://127.0.0.1:2379']

describe('registry security settings', function () {
  let dir: string
  let pem: string
  let secret: string
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'muster-sec-'))
    pem = join(dir, 'ca.pem')
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n')
    secret = join(dir, 'pw')
    writeFileSync(secret, 's3cret\n')
    chmodSync(secret, 0o600)
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  const fails = (fn: () => unknown, pattern: RegExp): void => {
    let caught: unknown
    try {
      fn()
    } catch (error) {
      caught = error
    }
    expect(caught).to.be.instanceOf(UserError)
    expect((caught as Error).message).to.match(pattern)
  }

  it('reads the CA, the user and the password file; https:// without a CA trusts the system\'s CAs', function () {
    const s = resolveSecurity(securityInput({'etcd-ca': pem, 'etcd-user': 'agent', 'etcd-password-file': secret}, {}), HTTPS, {})
    expect(s.tls?.ca?.toString()).to.include('BEGIN CERTIFICATE')
    expect(s.auth).to.deep.equal({username: 'agent', password: 's3cret'})
    expect(resolveSecurity({}, HTTPS, {})).to.deep.equal({tls: {}})
    expect(resolveSecurity({}, HTTP, {})).to.deep.equal({})
  })

  it('takes the environment when no flag is given, and names it in errors', function () {
    const s = resolveSecurity(securityInput({}, {MUSTER_ETCD_USER: 'op', MUSTER_ETCD_PASSWORD: 'pw'}), HTTP, {MUSTER_ETCD_PASSWORD: 'pw'})
    expect(s.auth).to.deep.equal({username: 'op', password: 'pw'})
    fails(() => resolveSecurity(securityInput({}, {MUSTER_ETCD_USER: 'op'}), HTTP, {}), /^MUSTER_ETCD_USER names etcd user op but no password was given/)
  })

  it('refuses a certificate without its key, TLS on an http:// endpoint, a password without a user', function () {
    fails(() => resolveSecurity(securityInput({'etcd-cert': pem}, {}), HTTPS, {}), /^--etcd-cert needs its pair/)
    fails(() => resolveSecurity(securityInput({'etcd-ca': pem}, {}), HTTP, {}), /^--etcd-ca is a TLS setting, but http:\/\/127\.0\.0\.1:2379 is a plain http:\/\/ endpoint/)
    fails(() => resolveSecurity(securityInput({}, {}), HTTP, {MUSTER_ETCD_PASSWORD: 'x'}), /password was given \(MUSTER_ETCD_PASSWORD\) but no user/)
  })

  it('refuses a password file every user can read, and a missing file, naming the flag', function () {
    const open = join(dir, 'open')
    writeFileSync(open, 'pw')
    chmodSync(open, 0o644)
    fails(() => resolveSecurity(securityInput({'etcd-user': 'a', 'etcd-password-file': open}, {}), HTTP, {}), /^--etcd-password-file: .*open can be read by every user/)
    fails(() => resolveSecurity(securityInput({'etcd-ca': join(dir, 'nope.pem')}, {}), HTTPS, {}), /^--etcd-ca: the CA certificate file .*nope\.pem does not exist/)
  })
})

/** An etcd auth store in memory: registry:init's logic, not etcd's, is under test here. */
function memoryAdmin(): AccessAdmin & {calls: string[]; grantsOf: Map<string, Grant[]>; passwords: Map<string, string>} {
  const grantsOf = new Map<string, Grant[]>()
  const userRoles = new Map<string, string[]>()
  const passwords = new Map<string, string>()
  const calls: string[] = []
  return {
    calls,
    grantsOf,
    passwords,
    roles: async () => [...grantsOf.keys()],
    users: async () => [...userRoles.keys()],
    createRole: async (name) => {
      calls.push(`createRole ${name}`)
      grantsOf.set(name, [])
    },
    grants: async (role) => [...(grantsOf.get(role) ?? [])],
    grant: async (role, g) => {
      calls.push(`grant ${role} ${g.permission} ${g.prefix}`)
      grantsOf.get(role)?.push(g)
    },
    revoke: async (role, g) => {
      calls.push(`revoke ${role} ${g.permission} ${g.prefix}`)
      grantsOf.set(role, (grantsOf.get(role) ?? []).filter((x) => x.prefix !== g.prefix || x.permission !== g.permission))
    },
    createUser: async (name, password) => {
      calls.push(`createUser ${name}`)
      userRoles.set(name, [])
      passwords.set(name, password)
    },
    setPassword: async (name, password) => {
      calls.push(`setPassword ${name}`)
      passwords.set(name, password)
    },
    userRoles: async (name) => userRoles.get(name) ?? [],
    addRole: async (user, role) => {
      calls.push(`addRole ${user} ${role}`)
      userRoles.get(user)?.push(role)
    },
    enableAuth: async () => {
      calls.push('enableAuth')
    },
  }
}

describe('registry:init plan and apply', function () {
  it('agents write only services/, nodes/ and rollout/; operators the whole project', function () {
    const plan = accessPlan('shop')
    expect(plan.roles[0]?.grants.map((g) => `${g.permission} ${g.prefix}`)).to.deep.equal([
      'read /muster/shop/', 'readwrite /muster/shop/services/', 'readwrite /muster/shop/nodes/', 'readwrite /muster/shop/rollout/',
    ])
    expect(plan.roles[1]?.grants.map((g) => `${g.permission} ${g.prefix}`)).to.deep.equal(['readwrite /muster/shop/'])
  })

  it('no agent grant can write a retire key: retire/NODE is operator-written (blue-green retirement)', function () {
    const plan = accessPlan('shop')
    const key = retireKey('shop', 'i-0abc')
    const agentWrites = (plan.roles[0]?.grants ?? []).filter((g) => g.permission !== 'read' && key.startsWith(g.prefix))
    expect(agentWrites).to.deep.equal([])
    expect((plan.roles[1]?.grants ?? []).some((g) => g.permission === 'readwrite' && key.startsWith(g.prefix))).to.equal(true)
  })

  it('creates what is missing, stores each password before its user exists, and is idempotent', async function () {
    const admin = memoryAdmin()
    const stored: string[] = []
    const newPassword = async (user: string, password: string): Promise<string> => {
      // The user must not exist yet when its password is handed over.
      expect(admin.calls).not.to.include(`createUser ${user}`)
      stored.push(`${user}=${password}`)
      return `/pw/${user}`
    }
    const first = await applyAccess(admin, accessPlan('shop'), {newPassword, rotate: false, enableAuth: true})
    expect(first.at(-1)?.action).to.equal('enabled')
    expect(stored.map((s) => s.split('=')[0])).to.deep.equal(['muster-shop-agent', 'muster-shop-operator', 'root'])
    expect(new Set(stored.map((s) => s.split('=')[1])).size).to.equal(3)
    const before = admin.calls.length
    const again = await applyAccess(admin, accessPlan('shop'), {newPassword, rotate: false, enableAuth: false})
    expect(again.map((s) => s.action)).to.deep.equal(['unchanged', 'unchanged', 'unchanged', 'unchanged'])
    expect(admin.calls.length).to.equal(before)
  })

  it('revokes a grant the plan does not hold (a hand-made write on deploys/) and rotates passwords on request', async function () {
    const admin = memoryAdmin()
    const newPassword = async (user: string): Promise<string> => `/pw/${user}`
    await applyAccess(admin, accessPlan('shop'), {newPassword, rotate: false, enableAuth: false})
    admin.grantsOf.get('muster-shop-agent')?.push({permission: 'readwrite', prefix: '/muster/shop/deploys/'})
    const old = admin.passwords.get('muster-shop-agent')
    const steps = await applyAccess(admin, accessPlan('shop'), {newPassword, rotate: true, enableAuth: false})
    expect(steps.filter((s) => s.action === 'revoked').map((s) => s.detail)).to.deep.equal(['readwrite /muster/shop/deploys/*'])
    expect(steps.filter((s) => s.action === 'password').map((s) => s.subject)).to.deep.equal(['user muster-shop-agent', 'user muster-shop-operator'])
    expect(admin.passwords.get('muster-shop-agent')).not.to.equal(old)
  })
})
