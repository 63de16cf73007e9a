// The checks the fleet verbs make before any stack work, and the pure pieces of blue-green and
// instance:create. Only the modules' own injection points are faked: no AWS, no Pulumi.
import {expect} from 'chai'

import {existsSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type AsgHealth, waitInService} from '../../src/aws/asg-health.js'
import type {GroupAsg} from '../../src/aws/asg.js'
import {UserError} from '../../src/errors.js'
import type {ChangeSet} from '../../src/stacks/changes.js'
import {autoscaleRun, autoscaleUpdate, type AutoscaleUpdateDeps, blueGreenSteps, foreignAsgs} from '../../src/actions/autoscale.js'
import type {NodeRow, RegistryRead} from '../../src/registry/read.js'
import {initialProvision} from '../../src/registry/records.js'
import {chooseZone, instanceCreate, type InstanceCreateOptions} from '../../src/actions/instance.js'
import type {IoHost} from '../../src/actions/io.js'
import {emptyIntent, type Intent} from '../../src/stacks/intent.js'
import {listFiles, makeTempDir, removeDir} from '../support/cli.js'

const NODES = {
  __base__: {region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-0123abcd'},
  web: {autoscale: {timeout: 60, node_min: 1, node_max: 2}},
  plain: {},
}

const ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c']

/** An IoHost (as with --yes) that records progress lines and fails the test if anything asks or previews. */
function fakeIO(): IoHost & {lines: string[]} {
  const lines: string[] = []
  return {
    lines,
    assumeYes: true,
    verbose: false,
    progress: (line: string) => {
      lines.push(line)
    },
    stream: (_group: string, line: string) => {
      lines.push(line)
    },
    showDone: () => undefined,
    showPreview: (_sets: readonly ChangeSet[]) => {
      throw new Error('showPreview must not be reached')
    },
    confirm: async () => {
      throw new Error('confirm must not be reached')
    },
  }
}

function asg(name: string, group = 'web', stack?: string): GroupAsg {
  return {name, arn: `arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:uuid:autoScalingGroupName/${name}`, tags: {group}, stack, desired: 1, inService: 1}
}

async function rejection(promise: Promise<unknown>): Promise<UserError> {
  try {
    await promise
  } catch (error) {
    expect(error).to.be.instanceOf(UserError)
    return error as UserError
  }
  expect.fail('expected a rejection')
}

function thrown(fn: () => unknown): UserError {
  try {
    fn()
  } catch (error) {
    expect(error).to.be.instanceOf(UserError)
    return error as UserError
  }
  expect.fail('expected a throw')
}

const intentWith = (generations: number[]): Intent => ({...emptyIntent(), generations})

describe('fleet actions', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTempDir('muster-fleet-service-')
    writeFileSync(join(dir, 'nodes.json'), JSON.stringify(NODES, null, 2))
  })
  afterEach(() => removeDir(dir))

  /** Nothing but the nodes file: no .muster/, no Pulumi.yaml, no stacks/. */
  const expectUntouched = (): void => {
    expect(listFiles(dir)).to.deep.equal(['nodes.json'])
    expect(existsSync(join(dir, '.muster'))).to.equal(false)
    expect(existsSync(join(dir, 'Pulumi.yaml'))).to.equal(false)
  }

  describe('foreignAsgs', () => {
    it('keeps the ASGs the stack does not manage', () => {
      const found = [asg('web', 'web', 'web'), asg('web-by-hand')]
      expect(foreignAsgs(found, ['web']).map((a) => a.name)).to.deep.equal(['web-by-hand'])
    })

    it('an ASG the stack manages is not a stranger', () => {
      expect(foreignAsgs([asg('web', 'web', 'web'), asg('web-g1', 'web', 'web')], ['web', 'web-g1'])).to.deep.equal([])
    })

    it('nothing found, nothing foreign; nothing managed, everything found is foreign', () => {
      expect(foreignAsgs([], ['web'])).to.deep.equal([])
      const found = [asg('web')]
      expect(foreignAsgs(found, [])).to.deep.equal(found)
    })
  })

  describe('autoscaleRun refusals (before any stack work)', () => {
    it('refuses when an ASG tagged for the group exists outside its stack, naming it and pointing at pulumi import', async () => {
      const asked: Array<[string, string]> = []
      const managedFor: string[] = []
      const error = await rejection(
        autoscaleRun({cwd: dir, previewOnly: false}, fakeIO(), {
          findAsgs: async (region, group) => {
            asked.push([region, group])
            return [asg('web-legacy')]
          },
          managedAsgs: async (group) => {
            managedFor.push(group)
            return []
          },
        }),
      )
      expect(error.message).to.include('web-legacy')
      expect(error.message).to.include('group=web')
      expect(error.hint).to.include('pulumi import')
      expect(error.hint).to.include('stack web')
      expect(error.exitCode).to.equal(1)
      // Without --groups only groups with autoscale are looked at: plain ({}) is not.
      expect(asked).to.deep.equal([['us-east-1', 'web']])
      expect(managedFor).to.deep.equal(['web'])
      expectUntouched()
    })

    it('names only the strangers when the stack manages some of the tagged ASGs', async () => {
      const error = await rejection(
        autoscaleRun({cwd: dir, groups: ['web'], previewOnly: true}, fakeIO(), {
          findAsgs: async () => [asg('web', 'web', 'web'), asg('web-old-1'), asg('web-old-2')],
          managedAsgs: async () => ['web'],
        }),
      )
      expect(error.message).to.match(/: web-old-1, web-old-2$/)
      expect(error.hint).to.include('pulumi import')
      expectUntouched()
    })

    it('refuses a group without autoscale, with a hint, before looking anything up', async () => {
      let lookups = 0
      const error = await rejection(
        autoscaleRun({cwd: dir, groups: ['plain'], previewOnly: false}, fakeIO(), {
          findAsgs: async () => {
            lookups++
            return []
          },
          managedAsgs: async () => {
            lookups++
            return []
          },
        }),
      )
      expect(error.message).to.equal('group plain has autoscale: false, so it has no Auto Scaling group')
      expect(error.hint).to.include('"autoscale"')
      expect(error.hint).to.include('muster instance:create plain --name NAME')
      expect(error.exitCode).to.equal(1)
      expect(lookups).to.equal(0)
      expectUntouched()
    })

    it('refuses an unknown group, listing the groups', async () => {
      const error = await rejection(
        autoscaleRun({cwd: dir, groups: ['nope'], previewOnly: false}, fakeIO(), {findAsgs: async () => [], managedAsgs: async () => []}),
      )
      expect(error.message).to.include('no group "nope"')
      expect(error.hint).to.include('web')
      expectUntouched()
    })
  })

  describe('blueGreenSteps', () => {
    it('[0] grows to [0, 1] and shrinks to [1]', () => {
      expect(blueGreenSteps(intentWith([0]))).to.deep.equal({grow: [0, 1], shrink: [1], next: 1})
    })

    it('[3] grows to [3, 4] and shrinks to [4]', () => {
      expect(blueGreenSteps(intentWith([3]))).to.deep.equal({grow: [3, 4], shrink: [4], next: 4})
    })

    it('after an interrupted update ([2, 3]) growing deletes nothing: [2, 3, 4], then [4]', () => {
      expect(blueGreenSteps(intentWith([2, 3]))).to.deep.equal({grow: [2, 3, 4], shrink: [4], next: 4})
    })

    it('does not depend on the order generations were recorded in, and leaves the intent alone', () => {
      const intent = intentWith([3, 2])
      expect(blueGreenSteps(intent)).to.deep.equal({grow: [2, 3, 4], shrink: [4], next: 4})
      expect(intent.generations).to.deep.equal([3, 2])
    })
  })

  describe('waitInService', () => {
    /** A health source that answers from a script, then repeats its last answer; and a fake clock. */
    function scripted(answers: Array<{healthy: number; desired: number}>): {health: AsgHealth; polls: string[]} {
      const polls: string[] = []
      return {
        polls,
        health: {
          inService: async (name: string) => {
            polls.push(name)
            return answers[Math.min(polls.length - 1, answers.length - 1)] as {healthy: number; desired: number}
          },
        },
      }
    }
    function clock(): {now: () => number; sleep: (ms: number) => Promise<void>; slept: number[]} {
      let t = 1_000_000
      const slept: number[] = []
      return {
        slept,
        now: () => t,
        sleep: async (ms: number) => {
          slept.push(ms)
          t += ms
        },
      }
    }

    it('returns once healthy reaches desired, polling until then and never sleeping after success', async () => {
      const {health, polls} = scripted([
        {healthy: 0, desired: 2},
        {healthy: 1, desired: 2},
        {healthy: 2, desired: 2},
      ])
      const c = clock()
      const seen: Array<[number, number]> = []
      await waitInService(health, 'web-g1', {timeoutMs: 600_000, intervalMs: 5_000, sleep: c.sleep, now: c.now, onPoll: (h, d) => seen.push([h, d])})
      expect(polls).to.deep.equal(['web-g1', 'web-g1', 'web-g1'])
      expect(seen).to.deep.equal([
        [0, 2],
        [1, 2],
        [2, 2],
      ])
      expect(c.slept).to.deep.equal([5_000, 5_000])
    })

    it('more healthy than desired counts as in service at the first poll, without sleeping', async () => {
      const {health, polls} = scripted([{healthy: 3, desired: 2}])
      const c = clock()
      await waitInService(health, 'web-g1', {timeoutMs: 60_000, sleep: c.sleep, now: c.now})
      expect(polls).to.have.length(1)
      expect(c.slept).to.deep.equal([])
    })

    it('sleeps 10 s between polls by default', async () => {
      const {health} = scripted([
        {healthy: 0, desired: 1},
        {healthy: 1, desired: 1},
      ])
      const c = clock()
      await waitInService(health, 'web-g1', {timeoutMs: 60_000, sleep: c.sleep, now: c.now})
      expect(c.slept).to.deep.equal([10_000])
    })

    it('throws a user error with the numbers after the timeout, having called onPoll at every poll', async () => {
      const {health, polls} = scripted([
        {healthy: 0, desired: 3},
        {healthy: 1, desired: 3},
      ])
      const c = clock()
      let onPolls = 0
      const error = await rejection(
        waitInService(health, 'web-g2', {
          timeoutMs: 30_000,
          intervalMs: 10_000,
          sleep: c.sleep,
          now: c.now,
          onPoll: () => {
            onPolls++
          },
        }),
      )
      expect(error.message).to.equal('web-g2: only 1 of 3 instances in service after 30 s')
      expect(error.hint).to.include('old Auto Scaling group is still serving')
      expect(error.exitCode).to.equal(1)
      // Polls at t = 0, 10, 20 and 30 s; the one at the deadline fails without a further sleep.
      expect(polls).to.have.length(4)
      expect(onPolls).to.equal(4)
      expect(c.slept).to.deep.equal([10_000, 10_000, 10_000])
    })

    it('an error from the health source is passed on as is', async () => {
      const c = clock()
      const health: AsgHealth = {
        inService: async (name: string) => {
          throw new UserError(`Auto Scaling group ${name} does not exist`)
        },
      }
      const error = await rejection(waitInService(health, 'web-g9', {timeoutMs: 60_000, sleep: c.sleep, now: c.now}))
      expect(error.message).to.equal('Auto Scaling group web-g9 does not exist')
      expect(c.slept).to.deep.equal([])
    })
  })

  describe('autoscaleUpdate blue-green with a registry (fake registry and fleet; the real ones: test/integration/blue-green.test.ts)', () => {
    const node = (id: string, extra: Record<string, unknown> = {}): NodeRow => ({node: id, group: 'web', address: '10.0.0.1', services: [], dependsOn: [], provision: initialProvision(), since: '2026-01-01T00:00:00.000Z', ...extra})
    /** A fleet at [0] whose stack updates are recorded, a fake clock that sleeping advances. */
    function fleet(read: () => Promise<Pick<RegistryRead, 'nodes' | 'services'>>): {deps: AutoscaleUpdateDeps; applied: number[][]; retired: string[][]} {
      let intent: Intent = {...emptyIntent(), fleet: true, generations: [0]}
      const applied: number[][] = []
      const retired: string[][] = []
      let clock = 0
      const instances: Record<string, string[]> = {'web-g0': ['i-old'], 'web-g1': ['i-new']}
      const deps: AutoscaleUpdateDeps = {
        now: () => clock,
        sleep: async (ms) => {
          clock += ms
        },
        health: () => ({inService: async () => ({healthy: 1, desired: 1}), instanceIds: async (asg) => instances[asg] ?? [], close: () => undefined}),
        registry: {read, retire: async (nodes) => void retired.push([...nodes]), clear: async () => undefined, close: () => undefined},
        applyFleet: async (group, change) => {
          intent = change(intent)
          applied.push(intent.generations)
          const asgNames = intent.generations.map((g) => `${group.name}-g${g}`)
          return {backend: 'mock', groups: [{group: group.name, status: 'ok', intent, preview: {stack: 'web', changes: [], counts: {create: 0, update: 0, replace: 0, delete: 0}}, applied: true, outputs: {asgNames}}]}
        },
      }
      return {deps, applied, retired}
    }

    it('a registry that does not answer fails before the stack grows', async () => {
      const {deps, applied} = fleet(async () => {
        throw new UserError('cannot reach the registry at http://127.0.0.1:1: connection refused')
      })
      const error = await rejection(autoscaleUpdate({cwd: dir, previewOnly: false, strategy: 'blue-green'}, fakeIO(), deps))
      expect(error.message).to.include('cannot reach the registry')
      expect(applied).to.deep.equal([])
    })

    it('old nodes that never retire keep their ASG: no shrink, an error naming what they still hold', async () => {
      const {deps, applied, retired} = fleet(async () => ({nodes: [node('i-old'), node('i-new')], services: [{service: 'api', node: 'i-old', group: 'web', address: '10.0.0.1', port: 80, since: '2026-01-01T00:00:00.000Z'}]}))
      const error = await rejection(autoscaleUpdate({cwd: dir, previewOnly: false, strategy: 'blue-green'}, fakeIO(), {...deps, retireTimeoutMs: () => 30_000}))
      expect(error.message).to.include('did not retire within 30 s').and.to.include('i-old still holds api').and.to.include('web-g0) was kept')
      expect(applied).to.deep.equal([[0, 1]])
      expect(retired).to.deep.equal([['i-old']])
    })

    it('a node record that says retired and holds no service lets the old ASG go', async () => {
      const {deps, applied} = fleet(async () => ({nodes: [node('i-old', {retired: '2026-01-01T00:01:00.000Z'}), node('i-new')], services: []}))
      await autoscaleUpdate({cwd: dir, previewOnly: false, strategy: 'blue-green'}, fakeIO(), deps)
      expect(applied).to.deep.equal([[0, 1], [1]])
    })
  })

  describe('instanceCreate checks (before any stack work)', () => {
    const options = (extra: Partial<InstanceCreateOptions>): InstanceCreateOptions => ({cwd: dir, group: 'plain', name: 'one', previewOnly: false, ...extra})

    for (const name of ['a b', 'x'.repeat(65), '', 'dots.not.ok', 'ünïcode']) {
      it(`refuses the name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} before asking for zones`, async () => {
        let zoneCalls = 0
        const error = await rejection(
          instanceCreate(options({name}), fakeIO(), {
            zones: async () => {
              zoneCalls++
              return ZONES
            },
          }),
        )
        expect(error.message).to.equal(`instance name "${name}" is not usable`)
        expect(error.hint).to.include('at most 64')
        expect(error.exitCode).to.equal(1)
        expect(zoneCalls).to.equal(0)
        expectUntouched()
      })
    }

    it('refuses a zone the region does not list, listing the zones', async () => {
      const regions: string[] = []
      const error = await rejection(
        instanceCreate(options({zone: 'us-east-1z'}), fakeIO(), {
          zones: async (region) => {
            regions.push(region)
            return ZONES
          },
        }),
      )
      expect(regions).to.deep.equal(['us-east-1'])
      expect(error.message).to.equal('zone us-east-1z is not an available zone of us-east-1')
      expect(error.hint).to.include('us-east-1a, us-east-1b, us-east-1c')
      expect(error.hint).to.include('leave --zone out')
      expectUntouched()
    })

    it('refuses a key file that does not exist, relative or absolute', async () => {
      for (const keyPath of ['missing-key.pem', join(dir, 'nowhere', 'key.pem')]) {
        const error = await rejection(instanceCreate(options({zone: 'us-east-1b', keyPath}), fakeIO(), {zones: async () => ZONES}))
        expect(error.message).to.equal(`key file ${keyPath} does not exist`)
        expect(error.hint).to.include('PEM private key')
      }
      expectUntouched()
    })

    it('refuses when the region lists no zone and --zone is left out', async () => {
      const error = await rejection(instanceCreate(options({}), fakeIO(), {zones: async () => [], random: () => 0}))
      expect(error.message).to.equal('us-east-1 reports no available zone')
      expect(error.hint).to.equal('Pass --zone.')
      expectUntouched()
    })

    it('refuses an unknown group before anything else', async () => {
      const error = await rejection(instanceCreate(options({group: 'nope'}), fakeIO(), {zones: async () => ZONES}))
      expect(error.message).to.include('no group "nope"')
      expectUntouched()
    })
  })

  describe('chooseZone', () => {
    const never = (): number => expect.fail('random must not be used')

    it('picks with random: 0 → first, 0.5 → second, 0.99 → third of three', () => {
      expect(chooseZone('us-east-1', ZONES, undefined, () => 0)).to.equal('us-east-1a')
      expect(chooseZone('us-east-1', ZONES, undefined, () => 0.5)).to.equal('us-east-1b')
      expect(chooseZone('us-east-1', ZONES, undefined, () => 0.99)).to.equal('us-east-1c')
    })

    it('picks the same zone whatever order the region lists them in', () => {
      expect(chooseZone('us-east-1', [...ZONES].reverse(), undefined, () => 0.5)).to.equal('us-east-1b')
      expect(chooseZone('us-east-1', ['us-east-1c', 'us-east-1a', 'us-east-1b'], undefined, () => 0)).to.equal('us-east-1a')
    })

    it('stays within the zones even if random returns 1', () => {
      expect(chooseZone('us-east-1', ZONES, undefined, () => 1)).to.equal('us-east-1c')
    })

    it('keeps a requested zone the region lists, without drawing', () => {
      expect(chooseZone('us-east-1', ZONES, 'us-east-1b', never)).to.equal('us-east-1b')
    })

    it('trusts a requested zone when the region lists none', () => {
      expect(chooseZone('us-east-1', [], 'us-east-1f', never)).to.equal('us-east-1f')
    })

    it('refuses a requested zone the region does not list, and no zones without a request', () => {
      const bad = thrown(() => chooseZone('eu-west-1', ['eu-west-1a', 'eu-west-1b'], 'us-east-1a', never))
      expect(bad.message).to.equal('zone us-east-1a is not an available zone of eu-west-1')
      expect(bad.hint).to.equal('Zones: eu-west-1a, eu-west-1b; or leave --zone out for a random one.')
      const none = thrown(() => chooseZone('eu-west-1', [], undefined, () => 0))
      expect(none.message).to.equal('eu-west-1 reports no available zone')
    })
  })
})
