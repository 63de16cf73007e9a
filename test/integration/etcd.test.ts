import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {sleep, waitUntil} from '../support/process.js'

describe('etcd (leases, watches, restart)', function () {
  this.timeout(60_000)
  let etcd: EtcdServer
  let client: Etcd3

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
  })

  after(async function () {
    client?.close()
    await etcd?.stop()
  })

  it('removes the keys of a lease that expires', async function () {
    // No keepalive: the lease must run out exactly as an agent's does when it dies.
    const lease = client.lease(2, {autoKeepAlive: false})
    await lease.put('/muster/test/lease/web-1').value('10.0.0.1:8080')
    await lease.put('/muster/test/lease/web-2').value('10.0.0.2:8080')
    await client.put('/muster/test/lease/static').value('kept')
    expect(await client.getAll().prefix('/muster/test/lease/').keys()).to.have.length(3)

    const started = Date.now()
    await waitUntil('lease expiry', async () => (await client.getAll().prefix('/muster/test/lease/').keys()).length === 1, {
      timeoutMs: 10_000,
      intervalMs: 200,
    })
    // etcd never expires a lease early.
    expect(Date.now() - started).to.be.greaterThan(1000)
    expect(await client.getAll().prefix('/muster/test/lease/').keys()).to.deep.equal(['/muster/test/lease/static'])
    expect(await client.get('/muster/test/lease/static').string()).to.equal('kept')
  })

  it('keeps the keys of a lease that is kept alive past its TTL', async function () {
    const lease = client.lease(1)
    await lease.put('/muster/test/alive/web-1').value('up')
    await sleep(2500)
    expect(await client.get('/muster/test/alive/web-1').string()).to.equal('up')
    await lease.revoke()
    expect(await client.get('/muster/test/alive/web-1').string()).to.equal(null)
  })

  it('replays every change to a watcher started from an earlier revision', async function () {
    const prefix = '/muster/test/watch/'
    const first = await client.put(`${prefix}a`).value('1').exec()
    const fromRevision = first.header.revision
    await client.put(`${prefix}a`).value('2')
    await client.put(`${prefix}b`).value('1')
    await client.delete().key(`${prefix}a`)

    const seen: string[] = []
    const watcher = await client.watch().prefix(prefix).startRevision(fromRevision).create()
    try {
      watcher.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()} @${kv.mod_revision}`))
      watcher.on('delete', (kv) => seen.push(`delete ${kv.key.toString()}`))
      // A change made after the watch exists must follow the replayed ones, in order.
      await client.put(`${prefix}c`).value('1')
      await waitUntil('watch events', async () => seen.length >= 5, {timeoutMs: 10_000})
    } finally {
      await watcher.cancel()
    }
    const rev = Number(fromRevision)
    expect(seen).to.deep.equal([
      `put ${prefix}a=1 @${rev}`,
      `put ${prefix}a=2 @${rev + 1}`,
      `put ${prefix}b=1 @${rev + 2}`,
      `delete ${prefix}a`,
      `put ${prefix}c=1 @${rev + 4}`,
    ])
  })

  it('keeps data across a restart on the same ports, and the client reconnects', async function () {
    await client.put('/muster/test/restart').value('before')
    await etcd.halt()
    expect(etcd.isRunning()).to.equal(false)
    let failed = false
    const probe = new Etcd3({hosts: etcd.endpoint, dialTimeout: 500})
    try {
      await probe.get('/muster/test/restart').options({deadline: new Date(Date.now() + 1000)}).string()
    } catch {
      failed = true
    } finally {
      probe.close()
    }
    expect(failed, 'a read while etcd is down must fail').to.equal(true)
    await etcd.resume()
    await waitUntil('client reconnect', async () => (await client.get('/muster/test/restart').string()) === 'before', {
      timeoutMs: 15_000,
      intervalMs: 250,
    })
    await etcd.restart()
    await waitUntil('client reconnect after restart()', async () => (await client.get('/muster/test/restart').string()) === 'before', {
      timeoutMs: 15_000,
      intervalMs: 250,
    })
  })
})
