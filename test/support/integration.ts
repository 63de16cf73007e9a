// Gate for integration tests that need a real component (Pulumi, moto, Packer, etcd, haproxy).
// Locally a missing component skips the suite with a one-line reason; in CI
// (MUSTER_REQUIRE_INTEGRATION=1) a missing component is a failure, so a skip can never pass unseen.
import {existsSync} from 'node:fs'
import {homedir} from 'node:os'
import {delimiter, join} from 'node:path'

/** Where scripts/ci/install-*.sh put the binaries they build or install. */
export const toolsDir = process.env.MUSTER_TOOLS ?? join(homedir(), '.cache', 'muster', 'tools')
export const toolsBin = join(toolsDir, 'bin')

export const integrationRequired = process.env.MUSTER_REQUIRE_INTEGRATION === '1'

/** Absolute path of an executable: the tools dir first, then PATH. */
export function findTool(name: string): string | undefined {
  const dirs = [toolsBin, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)]
  for (const dir of dirs) {
    const candidate = join(dir, name)
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

/**
 * Call from a `before` hook: skips the suite (or fails it under MUSTER_REQUIRE_INTEGRATION=1)
 * when `tool` cannot be found. Returns the tool's path.
 */
export function requireTool(ctx: Mocha.Context, tool: string, installScript: string): string {
  const found = findTool(tool)
  if (found) return found
  const reason = `${tool} not found (install it with: bash ${installScript})`
  if (integrationRequired) throw new Error(`MUSTER_REQUIRE_INTEGRATION=1 but ${reason}`)
  console.error(`    skipped: ${reason}`)
  ctx.skip()
}

/** PATH with the tools dir in front, for child processes. */
export function pathWithTools(): string {
  return [toolsBin, process.env.PATH ?? ''].join(delimiter)
}
