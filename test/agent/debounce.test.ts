import {expect} from 'chai'

import {type Clock, Debouncer, Lock} from '../../src/agent/debounce.js'

/** A manual clock: timers fire only when the test advances time. */
class ManualClock implements Clock {
  time = 0
  private timers = new Map<number, {at: number; fn: () => void}>()
  private next = 1
  now(): number {
    return this.time
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++
    this.timers.set(id, {at: this.time + ms, fn})
    return id
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number)
  }
  async advance(ms: number): Promise<void> {
    const end = this.time + ms
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) break
      this.timers.delete(due[0])
      this.time = due[1].at
      due[1].fn()
      await new Promise((resolve) => setImmediate(resolve))
    }
    this.time = end
  }
}

describe('Debouncer', () => {
  it('waits for MIN of quiet, and never longer than MAX after the first change', async () => {
    const clock = new ManualClock()
    const runs: number[] = []
    const d = new Debouncer({minMs: 2000, maxMs: 10_000}, async () => void runs.push(clock.now()), clock)
    d.trigger()
    await clock.advance(1999)
    expect(runs).to.deep.equal([])
    await clock.advance(1)
    expect(runs).to.deep.equal([2000])
    // A change every second keeps pushing the run back, up to MAX after the first.
    for (let i = 0; i < 15; i++) {
      d.trigger()
      await clock.advance(1000)
    }
    expect(runs).to.deep.equal([2000, 12_000])
  })

  it('coalesces a burst into one run, and changes during a run into exactly one more', async () => {
    const clock = new ManualClock()
    let release: (() => void) | undefined
    let runs = 0
    const d = new Debouncer({minMs: 100, maxMs: 1000}, () => {
      runs++
      return new Promise<void>((resolve) => {
        release = resolve
      })
    }, clock)
    for (let i = 0; i < 100; i++) d.trigger()
    await clock.advance(100)
    expect(runs).to.equal(1)
    for (let i = 0; i < 10; i++) d.trigger()
    expect(d.pending).to.equal(true)
    await clock.advance(5000)
    expect(runs).to.equal(1)
    release?.()
    await new Promise((resolve) => setImmediate(resolve))
    await clock.advance(100)
    expect(runs).to.equal(2)
    release?.()
    await new Promise((resolve) => setImmediate(resolve))
    await clock.advance(5000)
    expect(runs).to.equal(2)
  })

  it('fires at once with a 0:0 wait, and never after stop()', async () => {
    const clock = new ManualClock()
    let runs = 0
    const d = new Debouncer({minMs: 0, maxMs: 0}, async () => void runs++, clock)
    d.trigger()
    await clock.advance(0)
    expect(runs).to.equal(1)
    d.trigger()
    d.stop()
    await clock.advance(1000)
    expect(runs).to.equal(1)
  })
})

describe('Lock', () => {
  it('never runs two holders at once, and survives a holder that throws', async () => {
    const lock = new Lock()
    let inside = 0
    let most = 0
    const hold = (fail: boolean) =>
      lock.run(async () => {
        inside++
        most = Math.max(most, inside)
        await new Promise((resolve) => setTimeout(resolve, 5))
        inside--
        if (fail) throw new Error('boom')
      })
    const results = await Promise.allSettled([hold(false), hold(true), hold(false)])
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled'])
    expect(most).to.equal(1)
    expect(lock.busy).to.equal(false)
  })
})
