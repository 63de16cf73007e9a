// The pure half of haproxy fed by the registry: slots servers keep, the rendered text, and what a
// change needs (nothing, runtime API commands, or a reload).
import {expect} from 'chai'
import {readFileSync} from 'node:fs'

import {buildModel, type DependencySpec, type HaproxyModel, httpCheckPath, planChange, renderHaproxy, type SlotMap, slotsFor} from '../../src/agent/haproxy-config.js'
import type {ServiceRecord} from '../../src/registry/records.js'

const TEMPLATE = readFileSync('templates/haproxy.cfg', 'utf8')
const API: DependencySpec = {name: 'api', port: 8080, healthCheck: '/health'}
const rec = (node: string, address: string, port = 8080): ServiceRecord => ({node, group: 'api', address, port, since: '2026-11-25T00:00:00Z'})

function step(records: ServiceRecord[], previous?: {model: HaproxyModel; slots: SlotMap}, deps: DependencySpec[] = [API]) {
  return buildModel({node: 'web-1', group: 'web', dependencies: deps, where: () => records, previous: previous?.model, slots: previous?.slots ?? new Map()})
}

describe('haproxy config from the registry', function () {
  it('reserves at least 8 slots, and twice the servers as a power of two', function () {
    expect([0, 1, 4, 5, 9, 17].map(slotsFor)).to.deep.equal([8, 8, 8, 16, 32, 64])
  })

  it('takes only an HTTP path for option httpchk (a command or a path with spaces gives a TCP check)', function () {
    expect(httpCheckPath('/health')).to.equal('/health')
    expect(httpCheckPath('curl -f localhost')).to.equal('')
    expect(httpCheckPath('/a b')).to.equal('')
    expect(httpCheckPath('/x\nbind :1')).to.equal('')
  })

  it('keeps each server in its slot while others come and go', function () {
    const a = step([rec('n1', '10.0.0.1'), rec('n2', '10.0.0.2')])
    const b = step([rec('n2', '10.0.0.2'), rec('n3', '10.0.0.3')], a)
    const live = (m: HaproxyModel) => m.services[0]?.servers.filter((s) => s.live).map((s) => `${s.slot}=${s.address}`)
    expect(live(a.model)).to.deep.equal(['s1=10.0.0.1', 's2=10.0.0.2'])
    expect(live(b.model)).to.deep.equal(['s1=10.0.0.3', 's2=10.0.0.2'])
  })

  it('renders every slot, live or disabled, with the frontend on the service\'s port', function () {
    const text = renderHaproxy(TEMPLATE, step([rec('n1', '10.0.0.1')]).model)
    expect(text).to.include('frontend api\n    bind 127.0.0.1:8080\n    default_backend api\n')
    expect(text).to.include('    option httpchk GET /health\n    server s1 10.0.0.1:8080 weight 100 check\n    server s2 127.0.0.1:1 weight 100 check disabled\n')
    expect(text.match(/^ {4}server /gm)).to.have.length(8)
  })

  it('leaves out a dependency with no known port, and says so', function () {
    const {model} = step([], undefined, [{name: 'jobs', port: undefined, healthCheck: undefined}])
    expect(model.services).to.deep.equal([])
    expect(model.skipped).to.deep.equal(['jobs'])
  })

  it('plans runtime API commands for servers only, a reload for structure or template', function () {
    const a = step([rec('n1', '10.0.0.1')])
    const b = step([rec('n1', '10.0.0.1'), rec('n2', '10.0.0.2')], a)
    expect(planChange({model: a.model, template: TEMPLATE}, {model: b.model, template: TEMPLATE})).to.deep.equal({
      kind: 'runtime',
      commands: ['set server api/s2 addr 10.0.0.2 port 8080', 'set server api/s2 weight 100', 'set server api/s2 state ready'],
    })
    const c = step([rec('n2', '10.0.0.2')], b)
    expect(planChange({model: b.model, template: TEMPLATE}, {model: c.model, template: TEMPLATE})).to.deep.equal({kind: 'runtime', commands: ['set server api/s1 state maint']})
    const moved = step([rec('n2', '10.0.0.9')], c)
    expect(planChange({model: c.model, template: TEMPLATE}, {model: moved.model, template: TEMPLATE})).to.deep.equal({
      kind: 'runtime',
      commands: ['set server api/s2 state maint', 'set server api/s2 addr 10.0.0.9 port 8080', 'set server api/s2 weight 100', 'set server api/s2 state ready'],
    })
    expect(planChange({model: c.model, template: TEMPLATE}, {model: c.model, template: TEMPLATE})).to.deep.equal({kind: 'none'})
    expect(planChange({model: c.model, template: TEMPLATE}, {model: c.model, template: `${TEMPLATE}\n# changed\n`})).to.deep.equal({kind: 'reload'})
    const many = step(Array.from({length: 5}, (_, i) => rec(`m${i}`, `10.0.1.${i}`)), c)
    expect(many.model.services[0]?.slots).to.equal(16)
    expect(planChange({model: c.model, template: TEMPLATE}, {model: many.model, template: TEMPLATE})).to.deep.equal({kind: 'reload'})
    const newDependency = step([rec('n2', '10.0.0.2')], c, [API, {name: 'db', port: 5432, healthCheck: undefined}])
    expect(planChange({model: c.model, template: TEMPLATE}, {model: newDependency.model, template: TEMPLATE})).to.deep.equal({kind: 'reload'})
  })

  it('never shrinks a backend\'s slots while it exists (a scale-down needs no reload)', function () {
    const many = step(Array.from({length: 5}, (_, i) => rec(`m${i}`, `10.0.1.${i}`)))
    const few = step([rec('m0', '10.0.1.0')], many)
    expect(few.model.services[0]?.slots).to.equal(16)
    expect(planChange({model: many.model, template: TEMPLATE}, {model: few.model, template: TEMPLATE}).kind).to.equal('runtime')
  })
})
