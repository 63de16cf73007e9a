// Two kinds of failure: a UserError is something the user can fix (bad input, a refused action)
// and carries what to do next; anything else is a bug and gets a stack trace with --verbose.

export class UserError extends Error {
  /** What the user should do next; printed under the message. */
  readonly hint: string | undefined
  /** Process exit code; 1 unless a verb documents another (e.g. --check, preview). */
  readonly exitCode: number

  constructor(message: string, options: {hint?: string; exitCode?: number; cause?: unknown} = {}) {
    super(message, {cause: options.cause})
    this.name = 'UserError'
    this.hint = options.hint
    this.exitCode = options.exitCode ?? 1
  }
}

/** A place in a source file, 1-based. */
export interface Position {
  line: number
  column: number
}

/** One problem found in the nodes file. */
export interface Diagnostic {
  file: string
  position: Position | undefined
  /** Key path inside the file, e.g. ["12_04-bee", "autoscale", "node_min"]. */
  path: ReadonlyArray<string | number>
  message: string
}

export function formatKeyPath(path: ReadonlyArray<string | number>): string {
  if (path.length === 0) return '(top level)'
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.position ? `${d.file}:${d.position.line}:${d.position.column}` : d.file
  return `${where}: ${formatKeyPath(d.path)}: ${d.message}`
}

/** The nodes file has one or more problems; all of them are reported at once. */
export class NodesFileError extends UserError {
  readonly diagnostics: readonly Diagnostic[]

  constructor(diagnostics: readonly Diagnostic[]) {
    const count = diagnostics.length
    const first = diagnostics[0]
    const file = first ? first.file : 'nodes file'
    super(
      `${file} has ${count} problem${count === 1 ? '' : 's'}:\n` + diagnostics.map((d) => `  ${formatDiagnostic(d)}`).join('\n'),
      {hint: `Fix the ${count === 1 ? 'problem' : 'problems'} above and run the command again; nothing was written.`},
    )
    this.name = 'NodesFileError'
    this.diagnostics = diagnostics
  }
}

/**
 * The run was interrupted (Ctrl-C): exit 130, as a shell reports SIGINT, with what state is left
 * and what to run next instead of a bare exit.
 */
export class InterruptedError extends UserError {
  constructor(message: string, options: {hint?: string; cause?: unknown} = {}) {
    super(message, {...options, exitCode: 130})
    this.name = 'InterruptedError'
  }
}
