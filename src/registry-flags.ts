// Flags shared by everything that talks to the registry: the agent and the registry verbs.
import {Flags} from '@oclif/core'
import type {OptionFlag} from '@oclif/core/interfaces'

import {envFlag, nodesFlag} from './base-command.js'
import {type OptionSpec, REGISTRY_OPTIONS} from './registry/options.js'

/** oclif flags from option specs, so the CLI and the agent's bundle take the same options. */
export function flagsOf(specs: readonly OptionSpec[]): Record<string, OptionFlag<string | undefined> | OptionFlag<number | undefined>> {
  return Object.fromEntries(
    specs.map((s) => [s.flag, s.kind === 'integer' ? Flags.integer({description: s.description, helpValue: s.helpValue}) : Flags.string({description: s.description, helpValue: s.helpValue})]),
  )
}

type RegistryFlagName = 'etcd' | 'project' | 'etcd-ca' | 'etcd-cert' | 'etcd-key' | 'etcd-user' | 'etcd-password-file'

export const registryFlags = flagsOf(REGISTRY_OPTIONS) as Record<RegistryFlagName, OptionFlag<string | undefined>>

/**
 * --nodes and --env for the registry verbs: with environments in the nodes file, each one's
 * services live under their own registry project (src/registry/connect-options.ts).
 */
export const registryScopeFlags = {nodes: nodesFlag, env: envFlag}
