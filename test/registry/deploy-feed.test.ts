// The node's reading of rollouts (src/registry/deploy-feed.ts) over a store held in memory: values
// parsed defensively, statuses only of targeted nodes, slots only below n, a request never
// rewritten under a node, and rollouts long past their deadline dropped from memory.
import {expect} from 'chai'

import {DeployFeed} from '../../src/registry/deploy-feed.js'
import {type DeployRequest, deployKey, newDeployId, rolloutNodeKey, rolloutSlotKey, rolloutStopKey} from '../../src/registry/deploys.js'
import type {RegistryStore, Snapshot, WatchHandlers} from '../../src/registry/store.js'
import type {KeyEvent} from '../../src/registry/view.js'

const P = 'p'
const REF = {digest: 'a'.repeat(64), sha256: 'a'.repeat(64), url: `s3://bucket-1/muster/p/releases/web/${'a'.repeat(64)}.json`}

function request(id: string, deadlineMs: number, targets = ['web-1', 'web-2']): DeployRequest {
  return {id, groups: ['web'], n: 2, maxErrors: 0, releases: {web: REF}, targets: {web: targets}, requestedAt: new Date().toISOString(), requestedBy: 't', deadline: new Date(Date.now() + deadlineMs).toISOString()}
}

const status = (node: string, state: string, lease: string | null = null): string => JSON.stringify({node, group: 'web', state, startedAt: null, finishedAt: null, message: null, lease})

/** A store whose snapshots come from a list of keys and whose watch the test drives. */
function memoryStore(initial: KeyEvent[]): {store: RegistryStore; send(events: KeyEvent[]): void} {
  const handlers: WatchHandlers[] = []
  const store = {
    endpoints: [],
    snapshot: async (prefix: string): Promise<Snapshot> => ({revision: 1, events: initial.filter((e) => e.key.startsWith(prefix))}),
    watch: async (_prefix: string, _rev: number, h: WatchHandlers) => {
      handlers.push(h)
      return {close: async () => undefined}
    },
  } as unknown as RegistryStore
  return {store, send: (events) => handlers[0]?.events(events, 2)}
}

const put = (key: string, value: string, lease = '0'): KeyEvent => ({type: 'put', key, value, lease})
const silent = {warn: () => undefined, info: () => undefined}

describe('DeployFeed', function () {
  it('folds a rollout\'s keys into one state, ignoring what does not parse or does not concern it', async function () {
    const id = newDeployId(new Date())
    const {store, send} = memoryStore([
      put(deployKey(P, id), JSON.stringify(request(id, 60_000))),
      put(rolloutNodeKey(P, id, 'web-1'), status('web-1', 'running', '77')),
      put(rolloutNodeKey(P, id, 'intruder'), status('intruder', 'failed')),
      put(rolloutNodeKey(P, id, 'web-2'), '{"node":"web-2","state":"exploded"}'),
      put(rolloutSlotKey(P, id, 0), '{}', '77'),
      put(rolloutSlotKey(P, id, 5), '{}', '88'),
    ])
    const feed = new DeployFeed(store, P, silent)
    const heard: string[][] = []
    feed.subscribe((ids) => heard.push([...ids]))
    await feed.start()
    expect(feed.ids()).to.deep.equal([id])
    const state = feed.state(id)
    expect([...(state?.statuses.keys() ?? [])]).to.deep.equal(['web-1'])
    expect([...(state?.slotLeases ?? [])]).to.deep.equal(['77'])
    expect(feed.freeSlots(id)).to.deep.equal([1])
    expect(feed.progress(id, new Date())?.counts.running).to.equal(1)

    // A rewritten request is ignored; a status and the stop key arrive; the waiting line follows.
    send([put(deployKey(P, id), JSON.stringify({...request(id, 60_000), n: 50})), put(rolloutNodeKey(P, id, 'web-2'), status('web-2', 'waiting'))])
    expect(feed.state(id)?.request.n).to.equal(2)
    expect(feed.placeInLine(id, 'web-2', new Date())).to.equal(0)
    send([put(rolloutStopKey(P, id), 'not json')])
    expect(feed.state(id)?.stop?.reason).to.equal('cancelled')
    expect(heard.length).to.equal(3)
  })

  it('drops a rollout long past its deadline from memory', async function () {
    const old = newDeployId(new Date(Date.now() - 3 * 3_600_000))
    const live = newDeployId(new Date())
    const {store, send} = memoryStore([
      put(deployKey(P, old), JSON.stringify(request(old, -2 * 3_600_000))),
      put(rolloutNodeKey(P, old, 'web-1'), status('web-1', 'ok')),
      put(deployKey(P, live), JSON.stringify(request(live, 60_000))),
    ])
    const feed = new DeployFeed(store, P, silent)
    await feed.start()
    expect(feed.ids()).to.deep.equal([live])
    expect(feed.state(old)).to.equal(undefined)
    send([put(rolloutNodeKey(P, old, 'web-2'), status('web-2', 'ok'))])
    expect(feed.state(old)).to.equal(undefined)
    expect(feed.ids(new Date(Date.now() + 2 * 3_600_000))).to.deep.equal([])
  })

  it('keeps the waiting line, the failures and the slots\' changes current event by event, as deployProgress counts them', async function () {
    const id = newDeployId(new Date())
    const targets = ['web-3', 'web-1', 'web-5', 'web-2', 'web-4']
    const {store, send} = memoryStore([
      put(rolloutNodeKey(P, id, 'web-3'), status('web-3', 'waiting')),
      put(deployKey(P, id), JSON.stringify({...request(id, 60_000, targets), maxErrors: 1})),
    ])
    const feed = new DeployFeed(store, P, silent)
    await feed.start()
    const line = () => feed.line(id, new Date())
    const agrees = () => expect(line()?.failures, 'failures as deployProgress counts them').to.equal(feed.progress(id, new Date())?.failures)
    expect(line()?.place('web-3')).to.equal(0)
    send([put(rolloutNodeKey(P, id, 'web-1'), status('web-1', 'waiting')), put(rolloutNodeKey(P, id, 'web-5'), status('web-5', 'waiting'))])
    expect(['web-1', 'web-3', 'web-5', 'web-2'].map((n) => line()?.place(n))).to.deep.equal([0, 1, 2, undefined])
    expect(line()?.free).to.deep.equal([0, 1])

    // web-1 claims slot 0 (its running status in the same transaction): the line moves up.
    send([put(rolloutSlotKey(P, id, 0), '{}', '9'), put(rolloutNodeKey(P, id, 'web-1'), status('web-1', 'running', '9'))])
    expect(['web-1', 'web-3', 'web-5'].map((n) => line()?.place(n))).to.deep.equal([undefined, 0, 1])
    expect(line()?.free).to.deep.equal([1])
    expect(line()?.slotChanges(0)).to.equal(1)
    expect(line()?.failures).to.equal(0)
    agrees()

    // Its lease expires: the slot goes, web-1 is lost (one failure, within --max-errors 1).
    send([{type: 'delete', key: rolloutSlotKey(P, id, 0), value: '', lease: '0'}])
    expect(line()?.slotChanges(0)).to.equal(2)
    expect(line()?.failures).to.equal(1)
    expect(line()?.open).to.equal(true)
    agrees()

    // web-3 runs and fails: two failures, no further slot handed out.
    send([put(rolloutSlotKey(P, id, 1), '{}', '10'), put(rolloutNodeKey(P, id, 'web-3'), status('web-3', 'running', '10'))])
    send([put(rolloutNodeKey(P, id, 'web-3'), status('web-3', 'failed'))])
    expect(line()?.failures).to.equal(2)
    expect(line()?.open).to.equal(false)
    agrees()

    // A status deleted leaves the line; statuses of nodes not targeted never enter it.
    send([{type: 'delete', key: rolloutNodeKey(P, id, 'web-5'), value: '', lease: '0'}, put(rolloutNodeKey(P, id, 'web-9'), status('web-9', 'waiting'))])
    expect(line()?.place('web-5')).to.equal(undefined)
    expect(line()?.place('web-9')).to.equal(undefined)
    expect(feed.progress(id, new Date())?.counts).to.include({waiting: 3, running: 0, ok: 0, failed: 1, lost: 1})
  })
})
