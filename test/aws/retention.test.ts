import {expect} from 'chai'
import fc from 'fast-check'

import type {GroupImage, ImageStore} from '../../src/aws/ec2.js'
import type {ImageUser, ImagesInUse} from '../../src/aws/images-in-use.js'
import {adoptImages, deleteAllImages, planRetention, retireImages, sortByOwner} from '../../src/aws/retention.js'
import {UserError} from '../../src/errors.js'

const OWNER = {project: 'alpha'}

/** An image of project alpha unless `extra.tags` says otherwise. */
const image = (id: string, created: string, extra: Partial<GroupImage> = {}): GroupImage => ({
  id,
  name: `web-${id}`,
  created,
  snapshotIds: [`snap-${id}`],
  state: 'available',
  tags: {'muster:group': 'web', 'muster:project': 'alpha'},
  ...extra,
})
const legacyImage = (id: string, created: string): GroupImage => image(id, created, {tags: {'muster:group': 'web'}})
const otherImage = (id: string, created: string): GroupImage => image(id, created, {tags: {'muster:group': 'web', 'muster:project': 'beta'}})

const day = (n: number): string => `2026-01-${String(n).padStart(2, '0')}T00:00:00.000Z`
const instanceUser = (id: string): ImageUser => ({kind: 'instance', id, description: `instance ${id} (running)`})
const ids = (images: ReadonlyArray<{id: string}>): string[] => images.map((i) => i.id)

describe('planRetention', () => {
  const five = [image('a', day(1)), image('c', day(3)), image('e', day(5)), image('b', day(2)), image('d', day(4))]

  it('keeps the newest N by creation date and removes the rest, newest first', () => {
    const plan = planRetention(five, new Map(), 2)
    expect(ids(plan.keep)).to.deep.equal(['e', 'd'])
    expect(ids(plan.remove)).to.deep.equal(['c', 'b', 'a'])
    expect(plan.reasons).to.deep.equal({e: 'newest', d: 'newest', c: 'older', b: 'older', a: 'older'})
    expect(plan.keep.every((p) => p.action === 'keep')).to.equal(true)
    expect(plan.remove.every((p) => p.action === 'remove')).to.equal(true)
  })

  it('keeps an image in use beyond N, and says what uses it', () => {
    const inUse: ImagesInUse = new Map([['a', [instanceUser('i-1')]]])
    const plan = planRetention(five, inUse, 2)
    expect(ids(plan.keep)).to.deep.equal(['e', 'd', 'a'])
    expect(ids(plan.remove)).to.deep.equal(['c', 'b'])
    expect(plan.reasons.a).to.equal('in-use')
    expect(plan.keep.find((p) => p.id === 'a')?.usedBy).to.deep.equal([instanceUser('i-1')])
  })

  it('an image in use within the newest N is kept as newest and still counts towards N', () => {
    const plan = planRetention(five, new Map([['e', [instanceUser('i-1')]]]), 2)
    expect(ids(plan.keep)).to.deep.equal(['e', 'd'])
    expect(plan.reasons.e).to.equal('newest')
  })

  it('breaks ties in creation date by name, then id, whatever the input order', () => {
    const same = day(7)
    const tied = [image('x1', same, {name: 'web-20260107-0001'}), image('x3', same, {name: 'web-20260107-0003'}), image('x2', same, {name: 'web-20260107-0002'}), image('y', same, {name: 'web-20260107-0003'})]
    const expected = ['y', 'x3', 'x2', 'x1']
    fc.assert(
      fc.property(fc.shuffledSubarray(tied, {minLength: tied.length, maxLength: tied.length}), (shuffled) => {
        const plan = planRetention(shuffled, new Map(), 2)
        expect(ids(plan.keep)).to.deep.equal(expected.slice(0, 2))
        expect(ids(plan.remove)).to.deep.equal(expected.slice(2))
      }),
    )
  })

  it('removes nothing when N is at least the number of images', () => {
    for (const keep of [5, 6, 100]) {
      const plan = planRetention(five, new Map(), keep)
      expect(plan.remove).to.deep.equal([])
      expect(plan.snapshots).to.deep.equal([])
      expect(ids(plan.keep)).to.deep.equal(['e', 'd', 'c', 'b', 'a'])
    }
  })

  it('keep 0 removes everything not in use; no images plans nothing', () => {
    expect(ids(planRetention(five, new Map([['c', [instanceUser('i-9')]]]), 0).remove)).to.deep.equal(['e', 'd', 'b', 'a'])
    expect(planRetention([], new Map(), 3)).to.deep.equal({keep: [], remove: [], reasons: {}, snapshots: []})
  })

  it("lists the removed images' snapshots, but never one a kept image shares", () => {
    const images = [
      image('new', day(9), {snapshotIds: ['snap-new', 'snap-shared']}),
      image('old', day(1), {snapshotIds: ['snap-old1', 'snap-old2', 'snap-shared']}),
      image('older', day(0), {created: '2025-12-31T00:00:00.000Z', snapshotIds: []}),
    ]
    const plan = planRetention(images, new Map(), 1)
    expect(ids(plan.remove)).to.deep.equal(['old', 'older'])
    expect(plan.remove[0]?.snapshotIds).to.deep.equal(['snap-old1', 'snap-old2', 'snap-shared'])
    expect(plan.snapshots).to.deep.equal(['snap-old1', 'snap-old2'])
  })

  it('keeps pending images without counting them, and removes failed ones unless in use', () => {
    const images = [
      image('baking', day(10), {state: 'pending'}),
      image('broken', day(9), {state: 'failed'}),
      image('good2', day(8)),
      image('good1', day(7)),
      image('broken-used', day(1), {state: 'failed'}),
    ]
    const plan = planRetention(images, new Map([['broken-used', [instanceUser('i-2')]]]), 1)
    expect(plan.reasons).to.deep.equal({baking: 'pending', broken: 'failed', good2: 'newest', good1: 'older', 'broken-used': 'in-use'})
    expect(ids(plan.keep)).to.deep.equal(['baking', 'good2', 'broken-used'])
  })

  it('sorts an image without a creation date as the oldest', () => {
    const plan = planRetention([image('undated', ''), image('dated', day(1))], new Map(), 1)
    expect(ids(plan.keep)).to.deep.equal(['dated'])
    expect(ids(plan.remove)).to.deep.equal(['undated'])
  })

  it('refuses a negative or fractional N (a bug in the caller)', () => {
    expect(() => planRetention(five, new Map(), -1)).to.throw(RangeError)
    expect(() => planRetention(five, new Map(), 1.5)).to.throw(RangeError)
  })

  it('never removes an image in use, never keeps more unused images than N (property)', () => {
    const arbImage = fc.record({
      id: fc.string({minLength: 1, maxLength: 4}),
      name: fc.string({maxLength: 4}),
      created: fc.integer({min: 0, max: 50}).map((n) => new Date(Date.UTC(2026, 0, 1) + n * 3_600_000).toISOString()),
      snapshotIds: fc.array(fc.constantFrom('s1', 's2', 's3', 's4'), {maxLength: 2}),
      state: fc.constant('available'),
      tags: fc.constant({}),
    })
    fc.assert(
      fc.property(fc.uniqueArray(arbImage, {selector: (i) => i.id, maxLength: 12}), fc.integer({min: 0, max: 14}), fc.func(fc.boolean()), (images, keep, used) => {
        const inUse = new Map(images.filter((i) => used(i.id)).map((i) => [i.id, [instanceUser(`i-${i.id}`)]]))
        const plan = planRetention(images, inUse, keep)
        expect(plan.keep.length + plan.remove.length).to.equal(images.length)
        expect(plan.remove.some((p) => inUse.has(p.id))).to.equal(false)
        expect(plan.keep.filter((p) => p.reason === 'newest').length).to.equal(Math.min(keep, images.length))
        const keptSnapshots = new Set(plan.keep.flatMap((p) => p.snapshotIds))
        expect(plan.snapshots.some((s) => keptSnapshots.has(s))).to.equal(false)
      }),
    )
  })
})

/** An in-memory ImageStore that records what was done to it. */
function fakeStore(images: GroupImage[], inUse: ImagesInUse, failing: ReadonlySet<string> = new Set()): ImageStore & {calls: string[]} {
  const calls: string[] = []
  return {
    calls,
    async listGroupImages() {
      return images
    },
    async imagesInUse(imageIds) {
      return new Map([...inUse].filter(([id]) => imageIds === undefined || imageIds.includes(id)))
    },
    async deregisterImage(id) {
      if (failing.has(id)) throw new Error(`cannot deregister ${id}`)
      calls.push(`deregister ${id}`)
    },
    async deleteSnapshot(id) {
      if (failing.has(id)) throw new Error(`cannot delete ${id}`)
      calls.push(`delete ${id}`)
    },
    async tagImages(imageIds, tags) {
      calls.push(`tag ${imageIds.join(',')} ${JSON.stringify(tags)}`)
    },
  }
}

describe('retireImages / deleteAllImages (with an in-memory store)', () => {
  const images = [image('a', day(1)), image('b', day(2)), image('c', day(3), {snapshotIds: ['snap-c', 'snap-shared']}), image('d', day(4), {snapshotIds: ['snap-shared']})]

  it('deregisters each image, then deletes its snapshots; a shared snapshot goes with the last of its images', async () => {
    const store = fakeStore([...images, image('e', day(5))], new Map())
    const result = await retireImages({store, group: 'web', owner: OWNER, keep: 1, dryRun: false})
    expect(ids(result.kept)).to.deep.equal(['e'])
    expect(store.calls).to.deep.equal(['deregister d', 'deregister c', 'delete snap-c', 'delete snap-shared', 'deregister b', 'delete snap-b', 'deregister a', 'delete snap-a'])
    expect(result.deregistered).to.deep.equal(['d', 'c', 'b', 'a'])
    expect(result.deletedSnapshots).to.deep.equal(['snap-c', 'snap-shared', 'snap-b', 'snap-a'])
    expect(result.failures).to.deep.equal([])
  })

  it('a dry run plans the same and touches nothing', async () => {
    const store = fakeStore(images, new Map([['a', [instanceUser('i-1')]]]))
    const result = await retireImages({store, group: 'web', owner: OWNER, keep: 1, dryRun: true})
    expect(store.calls).to.deep.equal([])
    expect(ids(result.kept)).to.deep.equal(['d', 'a'])
    expect(ids(result.removed)).to.deep.equal(['c', 'b'])
    expect(result.deregistered).to.deep.equal([])
  })

  it('records a failure and goes on with the rest; an image it could not deregister keeps its snapshots', async () => {
    const store = fakeStore(images, new Map(), new Set(['b', 'snap-a']))
    const result = await retireImages({store, group: 'web', owner: OWNER, keep: 1, dryRun: false})
    expect(result.deregistered).to.deep.equal(['c', 'a'])
    expect(result.deletedSnapshots).to.deep.equal(['snap-c'])
    expect(result.failures).to.deep.equal([
      {id: 'b', message: 'cannot deregister b'},
      {id: 'snap-a', message: 'cannot delete snap-a'},
    ])
    // snap-shared: d keeps it (newest), so it is never deleted.
    expect(store.calls).to.not.include('delete snap-shared')
  })

  it('deleteAllImages refuses while one is in use, naming the image and its users, and touches nothing', async () => {
    const store = fakeStore(images, new Map([['b', [instanceUser('i-7'), {kind: 'launch-template', id: 'lt-1', description: 'launch template web (lt-1) version 2'}]]]))
    let error: unknown
    try {
      await deleteAllImages({store, group: 'web', owner: OWNER, force: false, dryRun: false})
    } catch (caught) {
      error = caught
    }
    expect(error).to.be.instanceOf(UserError)
    expect((error as UserError).message).to.include('b web-b: used by instance i-7 (running), launch template web (lt-1) version 2')
    expect((error as UserError).hint).to.include('--force')
    expect(store.calls).to.deep.equal([])
  })

  it('deleteAllImages with force removes every image and snapshot', async () => {
    const store = fakeStore(images, new Map([['b', [instanceUser('i-7')]]]))
    const result = await deleteAllImages({store, group: 'web', owner: OWNER, force: true, dryRun: false})
    expect(result.kept).to.deep.equal([])
    expect(result.deregistered).to.deep.equal(['d', 'c', 'b', 'a'])
    expect(result.deletedSnapshots.sort()).to.deep.equal(['snap-a', 'snap-b', 'snap-c', 'snap-shared'])
    expect(result.removed.find((p) => p.id === 'b')?.usedBy).to.have.length(1)
  })

  it('retention and deleteAllImages plan only the project\'s images: another project\'s are left out, legacy ones listed and untouched', async () => {
    const mixed = [...images, legacyImage('old1', '2025-12-31T00:00:00.000Z'), legacyImage('old2', '2025-12-30T00:00:00.000Z'), otherImage('b1', day(9)), otherImage('b2', day(8))]
    const retire = fakeStore(mixed, new Map())
    const retired = await retireImages({store: retire, group: 'web', owner: OWNER, keep: 1, dryRun: false})
    expect(ids(retired.kept)).to.deep.equal(['d'])
    expect(ids(retired.removed)).to.deep.equal(['c', 'b', 'a'])
    expect(ids(retired.legacy)).to.deep.equal(['old1', 'old2'])
    expect(retired.otherProjects).to.equal(2)
    expect(retired.project).to.equal('alpha')
    expect(retire.calls.filter((c) => /old|b1|b2/.test(c))).to.deep.equal([])

    const del = fakeStore(mixed, new Map())
    const deleted = await deleteAllImages({store: del, group: 'web', owner: OWNER, force: false, dryRun: false})
    expect(deleted.deregistered).to.deep.equal(['d', 'c', 'b', 'a'])
    expect(ids(deleted.legacy)).to.deep.equal(['old1', 'old2'])
    expect(del.calls.filter((c) => /old|b1|b2/.test(c))).to.deep.equal([])

    // Project beta sees alpha's images as another project's.
    const beta = sortByOwner(mixed, {project: 'beta'})
    expect(ids(beta.ours)).to.deep.equal(['b1', 'b2'])
    expect(beta.otherProjects).to.equal(4)
  })
})

describe('adoptImages (with an in-memory store)', () => {
  const all = [image('ours', day(5)), legacyImage('old1', day(1)), legacyImage('old2', day(2)), otherImage('theirs', day(3))]

  it('tags every legacy image of the group with the project; a dry run only lists them', async () => {
    const dry = fakeStore(all, new Map())
    const planned = await adoptImages({store: dry, group: 'web', owner: OWNER, dryRun: true})
    expect(ids(planned.adopted)).to.deep.equal(['old2', 'old1'])
    expect(dry.calls).to.deep.equal([])
    const store = fakeStore(all, new Map())
    const result = await adoptImages({store, group: 'web', owner: OWNER, dryRun: false})
    expect(store.calls).to.deep.equal(['tag old2,old1 {"muster:project":"alpha"}'])
    expect(result.project).to.equal('alpha')
  })

  it('with named images, only those; one of ours already is reported, not tagged again', async () => {
    const store = fakeStore(all, new Map())
    const result = await adoptImages({store, group: 'web', owner: OWNER, imageIds: ['old1', 'ours'], dryRun: false})
    expect(ids(result.adopted)).to.deep.equal(['old1'])
    expect(result.alreadyOurs).to.deep.equal(['ours'])
    expect(store.calls).to.deep.equal(['tag old1 {"muster:project":"alpha"}'])
  })

  it("refuses another project's image and an image that is not the group's, tagging nothing", async () => {
    const store = fakeStore(all, new Map())
    let error: unknown
    try {
      await adoptImages({store, group: 'web', owner: OWNER, imageIds: ['old1', 'theirs', 'ami-nope'], dryRun: false})
    } catch (caught) {
      error = caught
    }
    expect(error).to.be.instanceOf(UserError)
    expect((error as UserError).message).to.include('theirs: belongs to project beta, not alpha')
    expect((error as UserError).message).to.include('ami-nope: not an image of group web here')
    expect((error as UserError).hint).to.include('muster packer:adopt web --dry-run')
    expect(store.calls).to.deep.equal([])
  })

  it('in an environment: tags legacy images with the environment too, and refuses another environment\'s image by name', async () => {
    const production = image('prod', day(4), {tags: {'muster:group': 'web', 'muster:project': 'alpha', 'muster:environment': 'production'}})
    const store = fakeStore([...all, production], new Map())
    const staging = {project: 'alpha', environment: 'staging'}
    const result = await adoptImages({store, group: 'web', owner: staging, imageIds: ['old1'], dryRun: false})
    expect(ids(result.adopted)).to.deep.equal(['old1'])
    expect(store.calls).to.deep.equal(['tag old1 {"muster:project":"alpha","muster:environment":"staging"}'])
    const refused = await adoptImages({store, group: 'web', owner: staging, imageIds: ['prod'], dryRun: false}).then(() => undefined, (e: unknown) => e)
    expect((refused as UserError).message).to.include('prod: belongs to project alpha, environment production, not project alpha, environment staging')
  })

  it('retention in an environment keeps what another environment\'s stack pins, and never lists its images', async () => {
    const env = (id: string, created: string, environment: string): GroupImage => image(id, created, {tags: {'muster:group': 'web', 'muster:project': 'alpha', 'muster:environment': environment}})
    const store = fakeStore([env('s1', day(1), 'staging'), env('s2', day(2), 'staging'), env('s3', day(3), 'staging'), env('p1', day(4), 'production')], new Map())
    const pinned = new Map([['s1', [{kind: 'pinned' as const, id: 'stacks/Pulumi.web.production.yaml', environment: 'production', description: "production's stack"}]]])
    const result = await retireImages({store, group: 'web', owner: {project: 'alpha', environment: 'staging'}, keep: 1, dryRun: false, pinned})
    expect(result.kept.map((k) => [k.id, k.reason])).to.deep.equal([['s3', 'newest'], ['s1', 'in-use']])
    expect(ids(result.removed)).to.deep.equal(['s2'])
    expect(result.otherProjects).to.equal(1)
  })
})
