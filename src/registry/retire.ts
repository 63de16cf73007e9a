// The operator's side of retiring nodes (autoscale:update --strategy blue-green): registry
// snapshots and the retire/NODE keys, on one etcd client. Only operators may write retire/ (see
// access.ts): an agent acting on its retire key is acting on an operator's word.
import type {RegistryTarget} from './connect-options.js'
import {openEtcd} from './etcd.js'
import {isSegment, retireKey} from './keys.js'
import {explainRegistryFailure, readRegistry} from './read.js'

export interface RetireRegistry {
  read(): ReturnType<typeof readRegistry>
  retire(nodes: readonly string[], value: string): Promise<void>
  clear(nodes: readonly string[]): Promise<void>
  close(): void
}

export function openBlueGreenRegistry(target: RegistryTarget): RetireRegistry {
  const store = openEtcd({endpoints: target.endpoints, callTimeoutMs: 3000, security: target.security})
  const explained = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call()
    } catch (error) {
      throw await explainRegistryFailure(error as Error, target.endpoints, target.security, 'Writing retire keys takes the operator\'s user (muster registry:init): --etcd-user muster-PROJECT-operator.')
    }
  }
  return {
    read: () => readRegistry(target),
    retire: async (nodes, value) => {
      if (nodes.length > 0) await explained(() => store.putAll(nodes.filter(isSegment).map((node) => [retireKey(target.project, node), value] as const)))
    },
    clear: async (nodes) => {
      if (nodes.length > 0) await explained(() => store.deleteKeys(nodes.map((node) => retireKey(target.project, node))))
    },
    close: () => store.close(),
  }
}
