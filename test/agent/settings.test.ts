import {expect} from 'chai'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {buildAttributes, dependentsHoldingOn} from '../../src/agent/attributes.js'
import {checkProvisionCommand} from '../../src/agent/identity.js'
import {parseDuration, parseWait, readConfigFile, resolveSettings} from '../../src/agent/settings.js'
import {UserError} from '../../src/errors.js'
import {nodeKey, serviceKey} from '../../src/registry/keys.js'
import {RegistryView} from '../../src/registry/view.js'
import {makeTempDir, removeDir} from '../support/process.js'

const userError = (fn: () => unknown): UserError => {
  try {
    fn()
  } catch (error) {
    if (error instanceof UserError) return error
    throw error
  }
  throw new Error('expected a UserError')
}

describe('agent settings', () => {
  it('reads durations and waits as consul-template writes them', () => {
    expect(parseDuration('300ms', 'x')).to.equal(300)
    expect(parseDuration('2s', 'x')).to.equal(2000)
    expect(parseDuration('1.5m', 'x')).to.equal(90_000)
    expect(parseDuration('3', 'x')).to.equal(3000)
    expect(parseWait('2s:10s')).to.deep.equal({minMs: 2000, maxMs: 10_000})
    expect(parseWait('300ms')).to.deep.equal({minMs: 300, maxMs: 1200})
    expect(userError(() => parseWait('10s:2s')).message).to.match(/below the minimum/)
    expect(userError(() => parseWait('soon')).message).to.match(/"soon" is not a duration/)
  })

  it('lets flags override the config file, and refuses what it cannot use', () => {
    const s = resolveSettings({group: 'web', ttl: 5}, {group: 'api', etcd: 'http://127.0.0.1:2379', ttl: 30, wait: '0s:0s'}, {})
    expect(s.group).to.equal('web')
    expect(s.ttlSeconds).to.equal(5)
    expect(s.wait).to.deep.equal({minMs: 0, maxMs: 0})
    expect(s.endpoints).to.deep.equal(['http://127.0.0.1:2379'])
    expect(resolveSettings({group: 'g'}, {}, {MUSTER_ETCD_ENDPOINTS: 'http://a:1,http://b:2'}).endpoints).to.deep.equal(['http://a:1', 'http://b:2'])
    expect(userError(() => resolveSettings({group: 'g'}, {}, {})).hint).to.match(/MUSTER_ETCD_ENDPOINTS/)
    expect(userError(() => resolveSettings({group: 'g', etcd: 'localhost:2379'}, {}, {})).message).to.match(/not an etcd endpoint/)
    expect(userError(() => resolveSettings({group: 'g', etcd: 'http://a:1', ttl: 1}, {}, {})).message).to.match(/--ttl 1/)
    expect(userError(() => resolveSettings({group: 'g', etcd: 'http://a:1', statusAddr: 'nope'}, {}, {})).message).to.match(/HOST:PORT/)
    expect(userError(() => resolveSettings({group: 'g', etcd: 'http://a:1'}, {ttl: 2.5}, {})).message).to.match(/^"ttl" in --config 2\.5: expected whole seconds/)
    expect(userError(() => resolveSettings({group: 'g', etcd: 'http://a:1'}, {wait: '5s:1s'}, {})).message).to.match(/^"wait" in --config: the maximum/)
  })

  it('reports a bad config file with its place and an unknown key by name', () => {
    const dir = makeTempDir('agent-config')
    try {
      const file = join(dir, 'agent.json')
      writeFileSync(file, '{\n  "group": "web",\n  "ttl": 5,\n}\n')
      expect(userError(() => readConfigFile(file)).message).to.match(/agent\.json:4:1: not valid JSON/)
      writeFileSync(file, '{"group": "web", "tll": 5}')
      expect(userError(() => readConfigFile(file)).message).to.match(/tll: unknown setting/)
      writeFileSync(file, '{"group": "web", "ttl": "5"}')
      expect(userError(() => readConfigFile(file)).message).to.match(/ttl: expected a number/)
      expect(userError(() => readConfigFile(join(dir, 'missing.json'))).message).to.match(/ENOENT/)
    } finally {
      removeDir(dir)
    }
  })

  it('turns haproxy on with a config path and a way to reach haproxy, and refuses half a setting', () => {
    const etcd = {MUSTER_ETCD_ENDPOINTS: 'http://127.0.0.1:2379'}
    expect(resolveSettings({group: 'g'}, {}, etcd).haproxy).to.equal(undefined)
    expect(resolveSettings({group: 'g', haproxy: '/etc/haproxy/haproxy.cfg', haproxySocket: '/run/haproxy-master.sock'}, {}, etcd).haproxy).to.deep.equal({
      configPath: '/etc/haproxy/haproxy.cfg', socket: '/run/haproxy-master.sock', reload: undefined, template: undefined, binary: 'haproxy',
    })
    expect(userError(() => resolveSettings({group: 'g', haproxy: '/etc/haproxy/haproxy.cfg'}, {}, etcd)).message).to.equal('--haproxy needs a way to reach haproxy')
    expect(userError(() => resolveSettings({group: 'g'}, {haproxySocket: '/run/s.sock'}, etcd)).message).to.equal('"haproxySocket" in --config is an haproxy setting, but haproxy is off')
    expect(userError(() => resolveSettings({group: 'g', haproxyReload: 'systemctl reload haproxy'}, {}, etcd)).message).to.equal('--haproxy-reload is an haproxy setting, but haproxy is off')
  })

  it('refuses a provision command whose program does not exist', () => {
    expect(userError(() => checkProvisionCommand('no-such-chef --x', {PATH: '/usr/bin:/bin'})).message).to.match(/"no-such-chef" is not on PATH/)
    expect(userError(() => checkProvisionCommand('/nope/run.sh', {PATH: '/usr/bin'})).message).to.match(/not an executable file/)
    expect(() => checkProvisionCommand('FOO=1 sh -c "exit 0"', {PATH: '/usr/bin:/bin'})).not.to.throw()
    expect(() => checkProvisionCommand('true', {PATH: ''})).not.to.throw()
  })
})

describe('agent attributes', () => {
  const view = new RegistryView('p')
  view.apply(
    [
      {type: 'put', key: serviceKey('p', 'api', 'n2'), value: JSON.stringify({node: 'n2', group: 'api', address: '10.0.0.2', port: 8080, since: '2026-01-01T00:00:00Z'})},
      {type: 'put', key: serviceKey('p', 'db', 'n3'), value: JSON.stringify({node: 'n3', group: 'db', address: '10.0.0.3', since: '2026-01-01T00:00:00Z'})},
      {type: 'put', key: nodeKey('p', 'n4'), value: JSON.stringify({node: 'n4', group: 'web', address: 'x', services: [], dependsOn: ['api'], since: '2026-01-01T00:00:00Z', provision: {state: 'idle', ok: true, reason: 'boot', startedAt: null, finishedAt: null, revision: 4, message: null}})},
    ],
    9,
  )

  it('lists where each dependency and offered service runs, this node included', () => {
    const attributes = buildAttributes({dna: {id: 'web', run_list: ['role[role-web]']}, node: 'n1', group: 'web', address: '10.0.0.1', offers: [{name: 'www', port: 80}], dependsOn: ['api']}, view)
    expect(attributes).to.deep.equal({
      id: 'web',
      run_list: ['role[role-web]'],
      muster: {
        node: 'n1',
        group: 'web',
        revision: 9,
        services: {api: [{node: 'n2', group: 'api', address: '10.0.0.2', port: 8080}], www: [{node: 'n1', group: 'web', address: '10.0.0.1', port: 80}]},
        available: {www: true},
      },
    })
  })

  it('holds a decommission until each live dependent has provisioned past the deregistration', () => {
    expect(dependentsHoldingOn(view, ['api'], 5, 'n2')).to.deep.equal(['n4'])
    expect(dependentsHoldingOn(view, ['api'], 4, 'n2')).to.deep.equal([])
    expect(dependentsHoldingOn(view, ['db'], 100, 'n2')).to.deep.equal([])
  })
})

describe('agent attributes: hostile names', () => {
  it('keeps a service named like an Object.prototype key as a key', () => {
    const view = new RegistryView('p')
    const attributes = buildAttributes({dna: {}, node: 'n1', group: 'g', address: '10.0.0.1', offers: [{name: '__proto__'}, {name: 'constructor'}], dependsOn: []}, view) as {muster: {services: Record<string, unknown>}}
    expect(Object.keys(attributes.muster.services)).to.deep.equal(['__proto__', 'constructor'])
    expect(JSON.parse(JSON.stringify(attributes)).muster.services.__proto__).to.have.length(1)
  })

  it('refuses an endpoint that carries credentials, without echoing them', () => {
    const error = userError(() => resolveSettings({group: 'g', etcd: 'http://root:s3cret@127.0.0.1:2379'}, {}, {}))
    expect(error.message).to.match(/must not carry a user name or password/)
    expect(error.message + (error.hint ?? '')).not.to.contain('s3cret')
  })
})
