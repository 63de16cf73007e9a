// Flags shared by everything that talks to the registry: the agent, service:ls and node:ls.
import {Flags} from '@oclif/core'

export const registryFlags = {
  etcd: Flags.string({description: 'etcd endpoints, comma-separated (default: MUSTER_ETCD_ENDPOINTS).', helpValue: 'URL[,URL…]'}),
  project: Flags.string({description: 'Registry project: keys live under /muster/PROJECT/ (default: MUSTER_PROJECT, else the name in Pulumi.yaml).', helpValue: 'NAME'}),
}
