// packer:promote's copy, pure parts: the copy's tags, its token, and the bounded wait.
import {expect} from 'chai'

import {copyTags, copyToken, type ImageCopyStore, MAX_COPY_TRIES, type RegionImage, startCopy, waitAvailable} from '../../src/aws/copy.js'
import {withPinned} from '../../src/aws/retention.js'
import {InterruptedError, UserError} from '../../src/errors.js'

const image = (state: string): RegionImage => ({id: 'ami-0123456789abcdef0', name: 'web', description: '', state, tags: {}})

describe('promote: the copy', () => {
  it('carries the source image\'s tags (not aws: ones) and where it came from', () => {
    const tags = copyTags({...image('available'), tags: {'muster:group': 'web', 'aws:reserved': 'x', Name: 'web.staging'}}, 'us-west-2')
    expect(tags).to.deep.equal({'muster:group': 'web', Name: 'web.staging', 'muster:source-image': 'ami-0123456789abcdef0', 'muster:source-region': 'us-west-2'})
  })

  it('asks EC2 with one token per source image and region, at most 64 characters', () => {
    const token = copyToken({id: 'ami-0123456789abcdef0', region: 'ap-southeast-2'})
    expect(token).to.equal(copyToken({id: 'ami-0123456789abcdef0', region: 'ap-southeast-2'}))
    expect(token).not.to.equal(copyToken({id: 'ami-0123456789abcdef0', region: 'us-east-1'}))
    expect(token.length).to.be.at.most(64)
  })

  describe('startCopy', () => {
    const source = {id: 'ami-0123456789abcdef0', region: 'us-east-1', name: 'web', description: ''}
    /** EC2's idempotency as the fake keeps it: one copy per token, whatever became of it. */
    function store(states: Record<string, string | undefined>, found: RegionImage[] = []): ImageCopyStore & {tokens: string[]} {
      const byToken = new Map<string, string>()
      const tokens: string[] = []
      return {
        region: 'us-west-2',
        tokens,
        describe: async () => undefined,
        findCopies: async () => found,
        stateOf: async (id) => states[id],
        copy: async (from, _tags, after) => {
          const token = copyToken(from, after)
          tokens.push(token)
          if (!byToken.has(token)) byToken.set(token, `ami-copy${byToken.size}`)
          return byToken.get(token) as string
        },
        close: () => undefined,
      }
    }

    it('reuses a copy found by its tags, and copies once otherwise', async () => {
      const found = store({}, [image('pending')])
      expect(await startCopy(found, source, {})).to.equal('ami-0123456789abcdef0')
      expect(found.tokens).to.deep.equal([])
      const fresh = store({'ami-copy0': 'pending'})
      expect(await startCopy(fresh, source, {})).to.equal('ami-copy0')
      expect(fresh.tokens).to.have.length(1)
    })

    it('never replaces a copy EC2 does not list yet (a duplicate would be lost track of)', async () => {
      const fresh = store({})
      expect(await startCopy(fresh, source, {})).to.equal('ami-copy0')
      expect(fresh.tokens).to.have.length(1)
    })

    it('replaces a copy that failed or was deregistered with a token of its own, the same on every run', async () => {
      const states = {'ami-copy0': 'failed', 'ami-copy1': 'pending'}
      const first = store(states)
      expect(await startCopy(first, source, {})).to.equal('ami-copy1')
      expect(first.tokens[1]).to.equal(copyToken(source, 'ami-copy0'))
      // A promote killed after the retry asks the same two questions and gets the same copy.
      const again = store(states)
      expect(await startCopy(again, source, {})).to.equal('ami-copy1')
      expect(again.tokens).to.deep.equal(first.tokens)
      const deregistered = store({'ami-copy0': 'deregistered', 'ami-copy1': 'available'})
      expect(await startCopy(deregistered, source, {})).to.equal('ami-copy1')
    })

    it('gives up with a next step after failing copy after copy', async () => {
      const states: Record<string, string> = {}
      for (let i = 0; i < MAX_COPY_TRIES; i++) states[`ami-copy${i}`] = 'failed'
      const failing = store(states)
      const error = await startCopy(failing, source, {}).then(() => undefined, (e: unknown) => e)
      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).message).to.include(`failed ${MAX_COPY_TRIES} times`)
      expect(failing.tokens).to.have.length(MAX_COPY_TRIES)
    })
  })

  it('waits until the copy is available, saying how it goes', async () => {
    const states = ['pending', 'pending', 'available']
    const lines: string[] = []
    let clock = 0
    const found = await waitAvailable({region: 'us-east-1', describe: async () => image(states.shift() ?? 'available')}, 'ami-0123456789abcdef0', {
      intervalMs: 10,
      sleep: async (ms) => {
        clock += ms
      },
      now: () => clock,
      progress: (line) => lines.push(line),
    })
    expect(found.state).to.equal('available')
    expect(lines).to.have.length(2)
    expect(lines[0]).to.include('pending')
  })

  it('gives up after its bound with a next step, and on a failed copy at once', async () => {
    let clock = 0
    const slow = waitAvailable({region: 'us-east-1', describe: async () => image('pending')}, 'ami-0123456789abcdef0', {timeoutMs: 100, intervalMs: 40, sleep: async (ms) => void (clock += ms), now: () => clock})
    const error = await slow.then(() => undefined, (e: unknown) => e)
    expect(error).to.be.instanceOf(UserError)
    expect((error as UserError).message).to.include('still pending')
    expect((error as UserError).hint).to.include('finds this copy by its tags')
    const failed = await waitAvailable({region: 'us-east-1', describe: async () => image('failed')}, 'ami-0123456789abcdef0').then(() => undefined, (e: unknown) => e)
    expect((failed as UserError).message).to.include('is failed')
  })

  it('stops at once on Ctrl-C (its signal) instead of sleeping out its interval, saying the copy goes on and how to reuse it', async function () {
    this.timeout(10_000)
    const controller = new AbortController()
    let looks = 0
    // A copy that stays pending, looked at every 10 minutes: only the signal can end this wait in time.
    const waiting = waitAvailable({region: 'us-west-2', describe: async () => (looks++, image('pending'))}, 'ami-0123456789abcdef0', {intervalMs: 600_000, signal: controller.signal})
    setTimeout(() => controller.abort(), 50)
    const error = await waiting.then(() => undefined, (e: unknown) => e)
    expect(error).to.be.instanceOf(InterruptedError)
    expect((error as InterruptedError).exitCode).to.equal(130)
    expect((error as InterruptedError).message).to.include('ami-0123456789abcdef0 in us-west-2')
    expect((error as InterruptedError).hint).to.include('finds this copy by its tags')
    expect(looks).to.equal(1)
    // Already interrupted: not even one look.
    const before = await waitAvailable({region: 'us-west-2', describe: async () => (looks++, image('available'))}, 'ami-0123456789abcdef0', {signal: controller.signal}).then(() => undefined, (e: unknown) => e)
    expect(before).to.be.instanceOf(InterruptedError)
    expect(looks).to.equal(1)
  })
})

describe('retention: pinned images count as in use', () => {
  it('merges what pins an image with what AWS says uses it', () => {
    const aws = new Map([['ami-a', [{kind: 'instance' as const, id: 'i-1', description: 'instance i-1 (running)'}]]])
    const pinned = new Map([['ami-a', [{kind: 'pinned' as const, id: 'stacks/x', description: 'p', environment: 'production'}]], ['ami-b', [{kind: 'pinned' as const, id: 'stacks/x', description: 'p', environment: 'production'}]]])
    const merged = withPinned(aws, pinned)
    expect(merged.get('ami-a')?.map((u) => u.kind)).to.deep.equal(['instance', 'pinned'])
    expect(merged.get('ami-b')?.[0]?.environment).to.equal('production')
    expect(withPinned(aws, undefined)).to.equal(aws)
  })
})
