// A deploy slot's claim and hand-over against a real etcd (src/registry/etcd.ts): one nested
// transaction takes the first absent slot key of its candidates on the caller's lease, with the
// node's status beside it, and nothing once the rollout's stop key exists; commitIf moves a slot
// to another node's lease only while that node's status is what the caller saw.
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
    // The node's own status is no longer the `waiting` it wrote (a slot was handed to it): no claim.
    await client.put(key('nodes/a')).value('running')
    expect(await lease.createFirstAbsent([key('slots/4')], 'mine', {ifValue: {key: key('nodes/a'), value: 'waiting'}})).to.equal(-1)
    expect(await lease.createFirstAbsent([key('slots/4')], 'mine', {ifValue: {key: key('nodes/a'), value: 'running'}})).to.equal(0)
    await client.delete().key(key('slots/4'))
    await client.delete().key(key('nodes/a'))
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
  it('hands a slot over: the other branch when a value changed, nothing at all when the lease named is gone', async function () {
    const a = await store.grantLease(30)
    const b = await store.grantLease(30)
    await a.createFirstAbsent([key('slots/0')], 'a')
    await client.put(key('nodes/b')).value('waiting-b')
    const then = {puts: [{key: key('nodes/a'), value: 'ok'}, {key: key('slots/0'), value: 'b', lease: b.id}, {key: key('nodes/b'), value: 'running-b'}], deletes: []}
    const otherwise = {puts: [{key: key('nodes/a'), value: 'ok'}], deletes: [key('slots/0')]}
    // The value seen is stale: the plain release runs.
    expect(await store.commitIf({values: [{key: key('nodes/b'), value: 'waiting-b-before'}], absent: [key('stop')]}, then, otherwise)).to.equal(false)
    expect(await client.get(key('slots/0')).string()).to.equal(null)
    expect(await client.get(key('nodes/b')).string()).to.equal('waiting-b')
    // As seen: the slot moves to b's lease with b's status, in one revision.
    await a.createFirstAbsent([key('slots/0')], 'a')
    expect(await store.commitIf({values: [{key: key('nodes/b'), value: 'waiting-b'}], absent: [key('stop')]}, then, otherwise)).to.equal(true)
    const slot = (await client.get(key('slots/0')).exec()).kvs[0]
    expect(slot?.value.toString()).to.equal('b')
    expect(String(slot?.lease)).to.equal(b.id)
    expect(await client.get(key('nodes/b')).string()).to.equal('running-b')
    // Revoking a's lease no longer touches the slot; b's does.
    await a.revoke()
    expect(await client.get(key('slots/0')).string()).to.equal('b')
    const bId = b.id
    await b.revoke()
    expect(await client.get(key('slots/0')).string()).to.equal(null)
    // A hand-over to a lease that is gone: etcd refuses the whole transaction; nothing is written.
    await client.put(key('nodes/b')).value('waiting-b')
    const c = await store.grantLease(30)
    await c.createFirstAbsent([key('slots/1')], 'c')
    const toGone = {puts: [{key: key('nodes/c'), value: 'ok'}, {key: key('slots/1'), value: 'b', lease: bId}], deletes: []}
    let refused: unknown
    await store.commitIf({values: [{key: key('nodes/b'), value: 'waiting-b'}]}, toGone, {puts: [], deletes: []}).catch((error: unknown) => {
      refused = error
    })
    expect(refused, 'a put on a revoked lease').to.be.instanceOf(Error)
    expect(await client.get(key('nodes/c')).string()).to.equal(null)
    expect(await client.get(key('slots/1')).string()).to.equal('c')
    await c.revoke()
  })
})
