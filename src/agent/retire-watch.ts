// The agent's side of retiring: it looks for its own retire/NODE key (written by an operator's
// autoscale:update --strategy blue-green) and, once the key exists, retires (agent.retire()). The
// key's value is not read: only operators may write retire/ (registry/access.ts), and the key's
// existence is the whole request. The registry view ignores retire/ keys, so this reads the feed's
// raw events: the agent's one watch of the project, no watch of its own (see feed.ts).
import type {RegistryFeed} from '../registry/feed.js'
import {retireKey} from '../registry/keys.js'
import type {RegistryStore} from '../registry/store.js'
import type {Logger} from './log.js'

/** Calls onRetire once, when the node's retire key exists; resolves with the unsubscribe. */
export async function watchRetireKey(feed: RegistryFeed, store: Pick<RegistryStore, 'get'>, project: string, node: string, onRetire: () => void, log: Logger): Promise<() => void> {
  const key = retireKey(project, node)
  let fired = false
  const fire = (): void => {
    if (fired) return
    fired = true
    log.info('retire requested by an operator', {key})
    onRetire()
  }
  // Events come from the watch and from each re-snapshot (every key present), so a put missed
  // while the watch was down is still seen.
  const unsubscribe = feed.subscribeEvents((events) => {
    if (events.some((e) => e.key === key && e.type === 'put')) fire()
  })
  // The key may predate the subscription (the feed's first snapshot came before it).
  if ((await store.get(key)) !== undefined) fire()
  return unsubscribe
}
