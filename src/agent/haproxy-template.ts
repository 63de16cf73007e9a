// Which haproxy template the agent renders: --haproxy-template, else the project's
// templates/haproxy.cfg (beside the nodes file), else muster's own. The agent's one-file bundle
// carries muster's own as text (scripts/build-agent.mjs defines MUSTER_HAPROXY_TEMPLATE from
// templates/haproxy.cfg), since nothing sits beside it on a node.
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {UserError} from '../errors.js'

declare const MUSTER_HAPROXY_TEMPLATE: string | undefined

const PACKAGE_TEMPLATE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates', 'haproxy.cfg')

export function haproxyTemplateReader(given: string | undefined, projectDir: string): () => string {
  const own = join(projectDir, 'templates', 'haproxy.cfg')
  const read = (path: string, what: string): string => {
    try {
      return readFileSync(path, 'utf8')
    } catch (error) {
      throw new UserError(`cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'Make it a readable file, or leave --haproxy-template out to use templates/haproxy.cfg.'})
    }
  }
  return () => {
    if (given !== undefined) return read(given, 'the haproxy template')
    if (existsSync(own)) return read(own, 'the haproxy template')
    if (typeof MUSTER_HAPROXY_TEMPLATE === 'string') return MUSTER_HAPROXY_TEMPLATE
    return read(PACKAGE_TEMPLATE, 'muster\'s haproxy template')
  }
}
