// Groups run their inline programs in one Node process, in parallel. Pulumi's language server
// (automation/server.js) adds a process-wide 'uncaughtException' and 'unhandledRejection' listener
// for every program it runs, and each listener takes any error as its own program's: a rejection
// in one group's program failed every group running beside it ("One or more errors occurred", or
// "Resource monitor is terminating" once the healthy group's engine gave up on its program).
//
// Each program runs inside its own AsyncLocalStorage store (Pulumi's `global.asyncLocalStorage`),
// and Node emits those two events in the context of the code that failed. So a listener added from
// inside a program's store is wrapped to hear only errors raised in that same store; errors raised
// outside any program still reach every listener, as before.
type Listener = (...args: unknown[]) => void
type Register = (event: string | symbol, listener: Listener) => NodeJS.Process

const EVENTS = new Set<string | symbol>(['uncaughtException', 'unhandledRejection'])

function currentStore(): unknown {
  const storage = (globalThis as {asyncLocalStorage?: {getStore(): unknown}}).asyncLocalStorage
  return storage?.getStore()
}

let installed = false

export function isolateProgramErrors(): void {
  if (installed) return
  installed = true
  const target = process as unknown as Record<'on' | 'addListener' | 'prependListener', Register>
  for (const method of ['on', 'addListener', 'prependListener'] as const) {
    const original = target[method].bind(process)
    target[method] = (event, listener) => {
      const owner = EVENTS.has(event) ? currentStore() : undefined
      if (owner === undefined) return original(event, listener)
      const scoped = Object.assign(
        function (this: unknown, ...args: unknown[]): void {
          const store = currentStore()
          if (store !== undefined && store !== owner) return
          listener.apply(this, args)
        },
        // process.off(event, listener) finds the wrapper by this property, as it does for once().
        {listener},
      )
      return original(event, scoped)
    }
  }
}
