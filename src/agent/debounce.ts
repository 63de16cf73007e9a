// When to re-provision after dependency changes, as consul-template's `wait` does it: no run until
// the registry has been quiet for `min`, never later than `max` after the first change of a burst.
// Single-flight: the run itself goes through a lock, and changes that arrive while a run is going
// are folded into exactly one more run after it.

export interface Wait {
  minMs: number
  maxMs: number
}

export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

/** A promise-chain mutex: every provision run on a node goes through one, whatever asked for it. */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve()
  private held = 0

  get busy(): boolean {
    return this.held > 0
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.held++
    const result = this.tail.then(fn).finally(() => {
      this.held--
    })
    this.tail = result.catch(() => undefined)
    return result
  }
}

export class Debouncer {
  private first: number | undefined
  private timer: unknown
  private running = false
  private again = false
  private stopped = false

  constructor(
    private readonly wait: Wait,
    private readonly fire: () => Promise<void>,
    private readonly clock: Clock = systemClock,
  ) {}

  /** A change happened; schedule (or push back, within max) the run. */
  trigger(): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    const now = this.clock.now()
    this.first ??= now
    const due = Math.min(now + this.wait.minMs, this.first + this.wait.maxMs)
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = this.clock.setTimeout(() => void this.run(), Math.max(0, due - now))
  }

  /** Is a run waiting for its quiet period (or for the one in flight to end)? */
  get pending(): boolean {
    return this.timer !== undefined || this.again
  }

  stop(): void {
    this.stopped = true
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private async run(): Promise<void> {
    this.timer = undefined
    this.first = undefined
    this.running = true
    try {
      await this.fire()
    } finally {
      this.running = false
      if (this.again) {
        this.again = false
        this.trigger()
      }
    }
  }
}
