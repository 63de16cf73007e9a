import {createHash} from 'node:crypto'

/** Stable JSON text with a trailing newline, as committed to git. */
export function toJsonText(value: unknown, indent = 2): string {
  return `${JSON.stringify(value, null, indent)}\n`
}

export function sha256(...parts: string[]): string {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part).update('\0')
  return hash.digest('hex')
}
