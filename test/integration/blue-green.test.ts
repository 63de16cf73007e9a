// autoscale:update --strategy blue-green gated on the registry: a real etcd, agents as processes
// (their --node set to fake instance ids, as on EC2 where the node id is the instance id), health-
// gated services (a command check on a flag file). The Auto Scaling side is injected, as in the
// other blue-green tests (no AWS provider plugin here): the stack updates are recorded as the
// generations they ask for, and each ASG's instance ids are given by the test.
import {expect} from 'chai'
import {Etcd3} from 'etcd3'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {autoscaleUpdate, type AutoscaleUpdateDeps} from '../../src/actions/autoscale.js'
import type {IoHost} from '../../src/actions/io.js'
import type {ApplyResult} from '../../src/actions/update.js'
import {UserError} from '../../src/errors.js'
import {openBlueGreenRegistry} from '../../src/registry/retire.js'
import type {ChangeSet} from '../../src/stacks/changes.js'
import {emptyIntent, type Intent} from '../../src/stacks/intent.js'
import {type AgentProject, createAgentProject, type Groups, MACHINE, readPrefix, type RunningAgent, servicesIn, startAgent, stopAll, waitForAgent} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {sleep, waitUntil} from '../support/process.js'

const P = 'bluegreen'
const groups = (timeout: number): Groups => ({
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080, health_check: 'test -f "$FLAG"'}}},
  web: {autoscale: {timeout, node_min: 1, node_max: 2}, run_list: ['recipe[shop-service::api]']},
  front: {depends_on: ['api'], run_list: ['recipe[front]']},
})

function recordingIo(): IoHost & {lines: string[]} {
  const lines: string[] = []
  return {
    lines,
    assumeYes: true,
    verbose: false,
    progress: (line: string) => void lines.push(line),
    stream: (_group: string, line: string) => void lines.push(line),
    showDone: () => undefined,
    showPreview: (_sets: readonly ChangeSet[]) => undefined,
    confirm: async () => undefined,
  }
}

const EMPTY: ChangeSet = {stack: 'web', changes: [], counts: {create: 0, update: 0, replace: 0, delete: 0}}

/** The Auto Scaling side: a stack intent, the generations each update asked for, instance ids per ASG. */
class FakeFleet {
  intent: Intent = {...emptyIntent(), fleet: true, generations: [0]}
  readonly applied: number[][] = []
  readonly instances = new Map<string, string[]>()
  onApply: (generations: number[]) => Promise<void> = async () => undefined

  deps(extra: Partial<AutoscaleUpdateDeps> = {}): AutoscaleUpdateDeps {
    return {
      pollMs: 200,
      inServiceTimeoutMs: () => 10_000,
      retireTimeoutMs: () => 20_000,
      health: () => ({
        inService: async (asg) => ({healthy: this.instances.get(asg)?.length ?? 0, desired: this.instances.get(asg)?.length ?? 0}),
        instanceIds: async (asg) => [...(this.instances.get(asg) ?? [])],
        close: () => undefined,
      }),
      applyFleet: async (group, change) => {
        const next = change(this.intent)
        await this.onApply(next.generations)
        this.intent = next
        this.applied.push(next.generations)
        const asgNames = next.generations.map((g) => `${group.name}-g${g}`)
        const result: ApplyResult = {backend: 'mock', groups: [{group: group.name, status: 'ok', intent: next, preview: EMPTY, applied: true, outputs: {asgNames, asgName: asgNames.at(-1)}}]}
        return result
      },
      ...extra,
    }
  }
}

describe('autoscale:update --strategy blue-green gated on the registry (real etcd, agents as processes)', function () {
  this.timeout(120_000)
  let etcd: EtcdServer
  let client: Etcd3
  let project: AgentProject
  const agents: RunningAgent[] = []
  const fleet = new FakeFleet()
  const TIMING = ['--health', 'inter=200ms,timeout=150ms,rise=2,fall=2']
  const flag = (node: string): string => join(project.dir, `${node}.ok`)

  const agent = async (node: string, group = 'web'): Promise<RunningAgent> => {
    const a = await startAgent(project, {group, node, endpoints: [etcd.endpoint], extraArgs: TIMING, env: {FLAG: flag(node)}})
    agents.push(a)
    await waitForAgent(a)
    return a
  }
  const serviceKeys = async (): Promise<string[]> => [...(await readPrefix(client, `/muster/${P}/services/`)).keys()].sort()
  const update = (deps: AutoscaleUpdateDeps, io: IoHost): Promise<ApplyResult> =>
    autoscaleUpdate({cwd: project.dir, nodesPath: project.nodesFile, groups: ['web'], previewOnly: false, strategy: 'blue-green', registry: {endpoints: [etcd.endpoint], project: P, security: {}}}, io, deps)

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject(P, groups(30))
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    await etcd?.stop()
    project?.cleanup()
  })

  it('waits until every new instance has registered its services (a failing check holds it), then retires the old nodes before removing their ASG', async function () {
    writeFileSync(flag('i-0a1d000000000001'), 'ok')
    const old = await agent('i-0a1d000000000001')
    const front = await agent('front-1', 'front')
    await waitUntil('old api registered', async () => (await serviceKeys()).includes(`/muster/${P}/services/api/i-0a1d000000000001`), {proc: old.proc, timeoutMs: 20_000})
    writeFileSync(flag('i-0b2e000000000001'), 'ok')
    await agent('i-0b2e000000000001')
    const held = await agent('i-0b2e000000000002')
    fleet.instances.set('web-g0', ['i-0a1d000000000001'])
    fleet.instances.set('web-g1', ['i-0b2e000000000001', 'i-0b2e000000000002'])
    // What the registry holds when the old ASG is removed.
    let atShrink: {services: string[]; oldRecord: Record<string, unknown> | undefined; retireKeys: string[]} | undefined
    fleet.onApply = async (generations) => {
      if (generations.join() !== '1') return
      const nodes = await readPrefix(client, `/muster/${P}/nodes/`)
      const oldValue = nodes.get(`/muster/${P}/nodes/i-0a1d000000000001`)?.value
      atShrink = {services: await serviceKeys(), oldRecord: oldValue === undefined ? undefined : (JSON.parse(oldValue) as Record<string, unknown>), retireKeys: [...(await readPrefix(client, `/muster/${P}/retire/`)).keys()]}
    }
    const io = recordingIo()
    const registry = openBlueGreenRegistry({endpoints: [etcd.endpoint], project: P, security: {}})
    const running = update(fleet.deps({registry}), io)
    let failed: unknown
    running.catch((error: unknown) => {
      failed = error
    })
    try {
      await waitUntil(
        'the wait names the held instance and its service',
        async () => {
          if (failed !== undefined) throw failed
          return io.lines.some((l) => l.includes('1/2 instances ready') && l.includes('i-0b2e000000000002 (services missing: api)'))
        },
        {proc: held.proc, timeoutMs: 20_000},
      )
      // Held: no shrink, no retire key, the old node still serves.
      expect(fleet.applied).to.deep.equal([[0, 1]])
      expect([...(await readPrefix(client, `/muster/${P}/retire/`)).keys()]).to.deep.equal([])
      expect(await serviceKeys()).to.include(`/muster/${P}/services/api/i-0a1d000000000001`)
      writeFileSync(flag('i-0b2e000000000002'), 'ok')
      const result = await running
      expect(result.groups[0]?.intent.generations).to.deep.equal([1])
    } finally {
      registry.close()
    }
    expect(fleet.applied).to.deep.equal([[0, 1], [1]])
    // The old ASG went only after its node had deregistered and drained, on its retire key.
    expect(atShrink?.services).to.deep.equal([`/muster/${P}/services/api/i-0b2e000000000001`, `/muster/${P}/services/api/i-0b2e000000000002`])
    expect(atShrink?.oldRecord?.retired).to.be.a('string')
    expect(atShrink?.oldRecord?.services).to.deep.equal([])
    expect(atShrink?.retireKeys).to.deep.equal([`/muster/${P}/retire/i-0a1d000000000001`])
    expect((await old.health()) as unknown as {retired: string | null}).to.have.property('retired').that.is.a('string')
    // Retire keys are cleared once their ASG is gone; the old agent stays up, registers nothing.
    expect([...(await readPrefix(client, `/muster/${P}/retire/`)).keys()]).to.deep.equal([])
    expect(io.lines.some((l) => l.includes('retiring 1 old nodes (i-0a1d000000000001)'))).to.equal(true)
    expect(io.lines.findIndex((l) => l.includes('old nodes retired'))).to.be.greaterThan(io.lines.findIndex((l) => l.includes('all 2 instances registered api')))
    // The dependent converges on the new nodes only.
    await waitUntil('front re-provisioned with the new nodes only', async () => project.runs('front-1').some((r) => r.reason === 'dependency' && [...servicesIn(r, 'api')].sort().join() === 'i-0b2e000000000001,i-0b2e000000000002'), {proc: front.proc, timeoutMs: 15_000})
    // A retired node never registers again, not even on a reload.
    old.signal('SIGHUP')
    await sleep(1000)
    expect(await serviceKeys()).not.to.include(`/muster/${P}/services/api/i-0a1d000000000001`)
    await old.stop()
  })

  it('rolls back past autoscale.timeout: the stack goes back to the old generation, the error names the missing services', async function () {
    project.writeNodes(groups(3))
    await agent('i-0c3f000000000001') // its check never passes: no flag file
    fleet.instances.set('web-g2', ['i-0c3f000000000001'])
    const before = structuredClone(fleet.intent)
    expect(before.generations).to.deep.equal([1])
    const io = recordingIo()
    const registry = openBlueGreenRegistry({endpoints: [etcd.endpoint], project: P, security: {}})
    let error: unknown
    try {
      await update(fleet.deps({registry}), io)
    } catch (error_) {
      error = error_
    } finally {
      registry.close()
    }
    expect(error).to.be.instanceOf(UserError)
    const message = (error as UserError).message
    expect(message).to.contain('rolled back').and.to.contain('i-0c3f000000000001 (services missing: api)').and.to.contain('web-g2 was removed')
    expect((error as UserError).hint).to.contain('health check')
    // Grown to [1, 2], then back to exactly the intent before the update.
    expect(fleet.applied.slice(2)).to.deep.equal([[1, 2], [1]])
    expect(fleet.intent).to.deep.equal(before)
    expect(io.lines.some((l) => l.includes('rolling back: removing web-g2, keeping web-g1'))).to.equal(true)
    // Nothing was retired: the serving nodes keep their services.
    expect([...(await readPrefix(client, `/muster/${P}/retire/`)).keys()]).to.deep.equal([])
    expect(await serviceKeys()).to.include.members([`/muster/${P}/services/api/i-0b2e000000000001`, `/muster/${P}/services/api/i-0b2e000000000002`])
  })

  it('without registry settings waits for InService only and says so', async function () {
    const io = recordingIo()
    fleet.instances.set('web-g2', ['i-0c3f000000000001'])
    const slept: number[] = []
    const result = await autoscaleUpdate({cwd: project.dir, nodesPath: project.nodesFile, groups: ['web'], previewOnly: false, strategy: 'blue-green'}, io, fleet.deps({sleep: async (ms) => void slept.push(ms)}))
    expect(result.groups[0]?.intent.generations).to.deep.equal([2])
    expect(fleet.applied.slice(4)).to.deep.equal([[1, 2], [2]])
    expect(io.lines.some((l) => l.includes('no registry settings') && l.includes('without checking its services'))).to.equal(true)
    expect(slept).to.deep.equal([3000])
  })
})
