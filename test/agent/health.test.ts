// The health gate's counting (rise, fall, starting unhealthy) with a probe and a clock of our own,
// and the --health setting.
import {expect} from 'chai'

import {HEALTH_DEFAULTS, HealthGate, type Probe} from '../../src/agent/health.js'
import {parseHealthTiming} from '../../src/agent/settings.js'
import {UserError} from '../../src/errors.js'

const quiet = {info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined}

function gate(results: Array<string | undefined>) {
  const changes: string[] = []
  let pending: (() => void) | undefined
  const probe: Probe = async () => results.shift()
  const g = new HealthGate({
    specs: () => [{service: 'api', check: '/health', port: 80}],
    address: () => '10.0.0.1',
    timing: {...HEALTH_DEFAULTS, rise: 2, fall: 3},
    probe,
    clock: {now: () => 0, setTimeout: (fn) => ((pending = fn), 1), clearTimeout: () => undefined},
    log: quiet,
    changed: (service, healthy) => changes.push(`${service}:${healthy ? 'up' : 'down'}`),
  })
  const tick = async (): Promise<void> => {
    const next = pending
    pending = undefined
    next?.()
    for (let i = 0; i < 5; i++) await Promise.resolve()
  }
  return {g, changes, tick}
}

describe('health gate', function () {
  it('starts unhealthy, rises after `rise` passes, falls after `fall` failures in a row', async function () {
    const {g, changes, tick} = gate([undefined, undefined, 'x', 'x', undefined, 'x', 'x', 'x'])
    g.start()
    for (let i = 0; i < 5; i++) await Promise.resolve()
    expect(g.ready('api')).to.equal(false)
    await tick()
    expect(g.ready('api')).to.equal(true)
    expect(changes).to.deep.equal(['api:up'])
    await tick() // x
    await tick() // x
    await tick() // pass: the failures in a row start again
    expect(g.ready('api')).to.equal(true)
    await tick()
    await tick()
    await tick()
    expect(g.ready('api')).to.equal(false)
    expect(changes).to.deep.equal(['api:up', 'api:down'])
    expect(g.status.api).to.include({healthy: false, failures: 3, lastError: 'x'})
  })

  it('lets a service without a check through', function () {
    expect(gate([]).g.ready('jobs')).to.equal(true)
  })
})

describe('--health', function () {
  it('takes haproxy\'s words, any subset, and keeps the defaults for the rest', function () {
    expect(parseHealthTiming('', '--health')).to.deep.equal(HEALTH_DEFAULTS)
    expect(parseHealthTiming('inter=5s,rise=3', '--health')).to.deep.equal({intervalMs: 5000, timeoutMs: 1000, rise: 3, fall: 3})
  })

  it('refuses an unknown key, a bad count, and a timeout longer than the interval', function () {
    for (const [text, message] of [
      ['every=2s', '--health: unknown setting "every"'],
      ['rise=0', '--health rise=0: expected a whole number from 1 to 100'],
      ['inter=1s,timeout=2s', '--health: the timeout (2000 ms) is longer than the interval (1000 ms)'],
    ]) {
      let caught: unknown
      try {
        parseHealthTiming(text as string, '--health')
      } catch (error) {
        caught = error
      }
      expect(caught).to.be.instanceOf(UserError)
      expect((caught as Error).message).to.equal(message)
    }
  })
})
