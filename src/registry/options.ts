// The registry's command-line options, as data: the CLI turns them into oclif flags
// (src/registry-flags.ts) and the agent's bundle parses them with node:util (src/agent/main.ts),
// so both programs take the same flags with the same words.
export interface OptionSpec {
  /** The flag's name without "--". */
  flag: string
  kind: 'string' | 'integer'
  description: string
  helpValue: string
}

export const REGISTRY_OPTIONS: readonly OptionSpec[] = [
  {flag: 'etcd', kind: 'string', description: 'etcd endpoints, comma-separated (default: MUSTER_ETCD_ENDPOINTS).', helpValue: 'URL[,URL…]'},
  {flag: 'project', kind: 'string', description: 'Registry project: keys live under /muster/PROJECT/ (default: MUSTER_PROJECT, else the name in Pulumi.yaml).', helpValue: 'NAME'},
  {flag: 'etcd-ca', kind: 'string', description: 'CA certificate (PEM) to trust for https:// endpoints (default: MUSTER_ETCD_CA, else the system\'s CAs).', helpValue: 'FILE'},
  {flag: 'etcd-cert', kind: 'string', description: 'Client certificate (PEM), when etcd asks for one (default: MUSTER_ETCD_CERT).', helpValue: 'FILE'},
  {flag: 'etcd-key', kind: 'string', description: 'The client certificate\'s key (PEM, mode 600) (default: MUSTER_ETCD_KEY).', helpValue: 'FILE'},
  {flag: 'etcd-user', kind: 'string', description: 'etcd user; its password comes from MUSTER_ETCD_PASSWORD or --etcd-password-file, never a flag (default: MUSTER_ETCD_USER).', helpValue: 'NAME'},
  {flag: 'etcd-password-file', kind: 'string', description: 'File holding the etcd user\'s password (mode 600) (default: MUSTER_ETCD_PASSWORD_FILE).', helpValue: 'FILE'},
]
