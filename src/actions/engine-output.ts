// What a group's stack run shows while it runs: one progress line per resource step, and the
// output of the part commands (Packer's log, retention's report) and of the engine (--verbose).
import {closeSync, existsSync, openSync, readdirSync, readSync, statSync} from 'node:fs'
import {join} from 'node:path'

import type {EngineEvent} from '@pulumi/pulumi/automation/index.js'

import {nameOfUrn} from '../stacks/changes.js'
import type {RunHooks} from '../stacks/workspace.js'
import type {IoHost} from './io.js'

export function progressReporter(group: string, io: Pick<IoHost, 'progress' | 'stream'>): (event: EngineEvent) => void {
  return (event) => {
    const pre = event.resourcePreEvent?.metadata
    if (pre && pre.op !== 'same' && !pre.type.startsWith('pulumi:')) io.progress(`[${group}] ${pre.op} ${pre.type} ${nameOfUrn(pre.urn)}…`)
    const done = event.resOutputsEvent?.metadata
    if (done && done.op !== 'same' && !done.type.startsWith('pulumi:')) io.progress(`[${group}] ${done.op} ${nameOfUrn(done.urn)} done`)
    const failed = event.resOpFailedEvent
    if (failed) io.progress(`[${group}] ${failed.metadata.op} ${nameOfUrn(failed.metadata.urn)} failed`)
    const diagnostic = event.diagnosticEvent
    // Errors are not streamed: the group's outcome carries them, once.
    if (diagnostic && diagnostic.urn && !diagnostic.ephemeral && diagnostic.severity !== 'error') {
      for (const line of diagnostic.message.replace(/\n$/, '').split('\n')) io.stream(group, line)
    }
  }
}

/** The engine's own text output, line by line, prefixed with the group. */
export function engineOutput(group: string, io: Pick<IoHost, 'stream'>): (text: string) => void {
  return (text) => {
    for (const line of text.replace(/\n$/, '').split('\n')) io.stream(group, line)
  }
}

/** The hooks of one engine run: progress always; with events, the steps; the engine's text with --verbose. */
export function runHooks(group: string, io: IoHost, options: {events: boolean}): RunHooks {
  return {
    ...(options.events ? {onEvent: progressReporter(group, io)} : {}),
    ...(io.verbose ? {onOutput: engineOutput(group, io)} : {}),
  }
}

/**
 * Streams what the part commands write (Packer's log, retention's report) while they run: they
 * run in the engine's provider process, which writes .muster/logs/GROUP-PART.log; this follows
 * those files. Returns a function that reads what is left and stops.
 */
export function tailPartLogs(root: string, group: string, io: Pick<IoHost, 'stream'>, intervalMs = 250): () => void {
  const dir = join(root, '.muster', 'logs')
  const offsets = new Map<string, number>()
  const pending = new Map<string, string>()
  const started = Date.now()
  const readNew = (file: string, flush: boolean): void => {
    const stat = statSync(file)
    // A log left by an earlier run is not news.
    if (stat.mtimeMs < started - 1000 && !offsets.has(file)) return
    let offset = offsets.get(file) ?? 0
    if (stat.size < offset) offset = 0 // truncated: a new run of that part
    if (stat.size === offset) return
    const fd = openSync(file, 'r')
    const buffer = Buffer.alloc(stat.size - offset)
    readSync(fd, buffer, 0, buffer.length, offset)
    closeSync(fd)
    offsets.set(file, stat.size)
    const lines = ((pending.get(file) ?? '') + buffer.toString('utf8')).split('\n')
    pending.set(file, flush ? '' : (lines.pop() ?? ''))
    for (const line of lines) if (line !== '' || !flush) io.stream(group, line)
  }
  const poll = (flush: boolean): void => {
    if (!existsSync(dir)) return
    for (const name of readdirSync(dir)) {
      if (name.startsWith(`${group}-`) && name.endsWith('.log')) readNew(join(dir, name), flush)
    }
  }
  const timer = setInterval(() => poll(false), intervalMs)
  return () => {
    clearInterval(timer)
    poll(true)
  }
}
