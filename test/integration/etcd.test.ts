// Component proof: the etcd the agent suites (agent-*.test.ts) run against starts and answers.
// What muster does with leases, watches and restarts is tested there, through muster's agent.
import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'

describe('etcd (component)', function () {
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

  it('starts and answers a put and a get', async function () {
    expect(etcd.isRunning()).to.equal(true)
    await client.put('/muster/test/smoke').value('up')
    expect(await client.get('/muster/test/smoke').string()).to.equal('up')
  })
})
