// Flags shared by everything that talks to the registry: the agent and the registry verbs.
import {Flags} from '@oclif/core'

export const registryFlags = {
  etcd: Flags.string({description: 'etcd endpoints, comma-separated (default: MUSTER_ETCD_ENDPOINTS).', helpValue: 'URL[,URL…]'}),
  project: Flags.string({description: 'Registry project: keys live under /muster/PROJECT/ (default: MUSTER_PROJECT, else the name in Pulumi.yaml).', helpValue: 'NAME'}),
  'etcd-ca': Flags.string({description: 'CA certificate (PEM) to trust for https:// endpoints (default: MUSTER_ETCD_CA, else the system\'s CAs).', helpValue: 'FILE'}),
  'etcd-cert': Flags.string({description: 'Client certificate (PEM), when etcd asks for one (default: MUSTER_ETCD_CERT).', helpValue: 'FILE'}),
  'etcd-key': Flags.string({description: 'The client certificate\'s key (PEM, mode 600) (default: MUSTER_ETCD_KEY).', helpValue: 'FILE'}),
  'etcd-user': Flags.string({description: 'etcd user; its password comes from MUSTER_ETCD_PASSWORD or --etcd-password-file, never a flag (default: MUSTER_ETCD_USER).', helpValue: 'NAME'}),
  'etcd-password-file': Flags.string({description: 'File holding the etcd user\'s password (mode 600) (default: MUSTER_ETCD_PASSWORD_FILE).', helpValue: 'FILE'}),
}
