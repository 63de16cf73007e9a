// The agent's side of retiring: it watches its own retire/NODE key (written by an operator's
// autoscale:update --strategy blue-green) and, once the key exists, retires (agent.retire()). The
// key's value is not read: only operators may write retire/ (registry/access.ts), and the key's
// existence is the whole request. The registry view ignores retire/ keys; this watch is separate.
import {retireKey} from '../registry/keys.js'
import type {RegistryStore, Watch} from '../registry/store.js'
import type {Logger} from './log.js'

export async function watchRetireKey(store: RegistryStore, project: string, node: string, onRetire: () => void, log: Logger): Promise<Watch> {
  const key = retireKey(project, node)
  let fired = false
  const fire = (): void => {
    if (fired) return
    fired = true
    log.info('retire requested by an operator', {key})
    onRetire()
  }
  // The key names a prefix to etcd: retire/i-1 would also match retire/i-10, so events are matched exactly.
  const snapshot = await store.snapshot(key)
  if (snapshot.events.some((e) => e.key === key && e.type === 'put')) fire()
  const open = (from: number): Promise<Watch> =>
    store.watch(key, from, {
      events: (events) => {
        if (events.some((e) => e.key === key && e.type === 'put')) fire()
      },
      broken: (error) => {
        // Compacted past our revision: look again (a put we missed is still there to see).
        log.warn('retire watch cancelled; reading the key again', {error: error.message})
        void store
          .snapshot(key)
          .then((s) => {
            if (s.events.some((e) => e.key === key && e.type === 'put')) fire()
            return open(s.revision + 1).then((w) => {
              current = w
            })
          })
          .catch((error_: Error) => log.warn('retire watch could not be re-opened', {error: error_.message}))
      },
      connection: () => undefined,
    })
  let current = await open(snapshot.revision + 1)
  return {close: () => current.close()}
}
