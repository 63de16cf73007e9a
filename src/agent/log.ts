// Structured logs to stderr (journald takes them): JSON lines with --log-format json, plain text
// otherwise. Control characters from registry values never reach a terminal raw.
export type Level = 'debug' | 'info' | 'warn' | 'error'

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

export function createLogger(format: 'json' | 'text', base: Record<string, unknown>, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const emit = (level: Level, message: string, fields: Record<string, unknown> = {}): void => {
    const time = new Date().toISOString()
    if (format === 'json') {
      write(`${JSON.stringify({time, level, msg: message, ...base, ...fields})}\n`)
      return
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ')
    // eslint-disable-next-line no-control-regex
    write(`${time} ${level.toUpperCase()} ${message}${extra ? ` ${extra}` : ''}\n`.replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, '?'))
  }
  return {
    debug: (m, f) => {
      if (process.env.MUSTER_DEBUG) emit('debug', m, f)
    },
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}

export const silentLogger: Logger = {debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined}
