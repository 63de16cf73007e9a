// A deploy slot's claim against a real etcd (src/registry/etcd.ts createFirstAbsent): one nested
// transaction takes the first absent slot key of its candidates on the caller's lease, with the
// node's status beside it, and nothing once the rollout's stop key exists.
import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {openEtcd} from '../../src/registry/etcd.js'
import type {RegistryStore} from '../../src/registry/store.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'

describe('etcd store: a slot claim tries its candidates in one transaction (real etcd)', function () {
  this.timeout(60_000)
  let etcd: EtcdServer
  let store: RegistryStore
  let client: Etcd3
  const key = (k: string) => `/muster/claim/rollout/r1/${k}`

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    store = openEtcd({endpoints: [etcd.endpoint]})
    client = new Etcd3({hosts: etcd.endpoint})
  })

  after(async function () {
    client?.close()
    store?.close()
    await etcd?.stop()
  })

  beforeEach(async function () {
    await client.delete().prefix('/muster/claim/')
  })

  it('takes the first absent key, on the lease, with the status, in one revision', async function () {
    await client.put(key('slots/0')).value('held')
    const lease = await store.grantLease(30)
    const before = Number((await client.get('x').exec()).header.revision)
    const taken = await lease.createFirstAbsent([key('slots/0'), key('slots/1'), key('slots/2')], 'mine', {unlessExists: key('stop'), alsoPut: {key: key('nodes/a'), value: 'running'}})
    expect(taken).to.equal(1)
    const slot = (await client.get(key('slots/1')).exec()).kvs[0]
    expect(slot?.value.toString()).to.equal('mine')
    expect(String(slot?.lease)).to.equal(lease.id)
    expect(await client.get(key('slots/0')).string()).to.equal('held')
    expect(await client.get(key('slots/2')).string()).to.equal(null)
    const status = (await client.get(key('nodes/a')).exec()).kvs[0]
    expect(status?.value.toString()).to.equal('running')
    expect(String(status?.lease)).to.equal('0')
    // Both writes at the one revision after `before`.
    expect(Number(slot?.mod_revision)).to.equal(before + 1)
    expect(Number(status?.mod_revision)).to.equal(before + 1)
    // Revoking the lease gives the slot back; the status stays.
    await lease.revoke()
    expect(await client.get(key('slots/1')).string()).to.equal(null)
    expect(await client.get(key('nodes/a')).string()).to.equal('running')
  })

  it('writes nothing when every candidate is held, or when the stop key exists', async function () {
    const lease = await store.grantLease(30)
    await client.put(key('slots/0')).value('held')
    await client.put(key('slots/1')).value('held')
    expect(await lease.createFirstAbsent([key('slots/0'), key('slots/1')], 'mine', {alsoPut: {key: key('nodes/a'), value: 'running'}})).to.equal(-1)
    await client.put(key('stop')).value('{}')
    expect(await lease.createFirstAbsent([key('slots/2'), key('slots/3')], 'mine', {unlessExists: key('stop'), alsoPut: {key: key('nodes/a'), value: 'running'}})).to.equal(-1)
    expect(await client.getAll().prefix(key('')).keys()).to.have.members([key('slots/0'), key('slots/1'), key('stop')])
    await lease.revoke()
  })

  it('of two claims racing for the same candidates, each gets a different slot', async function () {
    const [a, b] = await Promise.all([store.grantLease(30), store.grantLease(30)])
    const candidates = [key('slots/0'), key('slots/1')]
    const taken = await Promise.all([a.createFirstAbsent(candidates, 'a'), b.createFirstAbsent(candidates, 'b')])
    expect([...taken].sort()).to.deep.equal([0, 1])
    expect((await client.getAll().prefix(key('slots/')).strings())).to.have.all.keys(...candidates)
    await Promise.all([a.revoke(), b.revoke()])
  })
})
