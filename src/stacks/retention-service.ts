// packer:clean without --dry-run: record N (and the time of asking) in each group's stack and
// update only its retention part, which runs `muster packer:retain` inside the stack. The stack
// then applies the same N after every bake.
import {terminalIO} from '../ui/terminal-io.js'
import {applyParts, type ApplyResult, type StackIO} from './service.js'

export interface RetentionThroughStackOptions {
  cwd: string
  nodesPath?: string | undefined
  /** Named groups, or undefined for every baked group. */
  groups?: string[] | undefined
  keep: number
  yes: boolean
  preview?: boolean
  parallel?: number | undefined
  io?: StackIO
  now?: () => Date
}

export async function applyRetentionThroughStack(options: RetentionThroughStackOptions): Promise<ApplyResult> {
  const askedAt = (options.now ?? (() => new Date()))().toISOString()
  return applyParts(
    {
      cwd: options.cwd,
      nodesPath: options.nodesPath,
      groups: options.groups,
      applies: (g) => g.packer !== false,
      change: (intent) => ({...intent, keep: options.keep, cleanedAt: askedAt}),
      parts: ['retention'],
      yes: options.yes,
      previewOnly: options.preview ?? false,
      parallel: options.parallel,
    },
    options.io ?? terminalIO(),
  )
}
