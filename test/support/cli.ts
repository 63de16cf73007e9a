// Runs the built CLI (bin/run.js → dist/, as a user would after `npm run build`) in a directory.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const binRun = join(repoRoot, 'bin', 'run.js')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function runMuster(args: readonly string[], options: {cwd: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number}): CliResult {
  const result = spawnSync(process.execPath, [binRun, ...args], {
    cwd: options.cwd,
    env: {...process.env, NO_COLOR: '1', ...options.env},
    encoding: 'utf8',
    input: options.input ?? '',
    // A hang must fail its test, not the whole run: spawnSync stops mocha's own timeouts.
    timeout: options.timeoutMs ?? 240_000,
    killSignal: 'SIGKILL',
  })
  const timedOut = result.error !== undefined && /ETIMEDOUT/.test(String(result.error))
  return {code: result.status ?? -1, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (timedOut ? `\n[test harness] killed after ${(options.timeoutMs ?? 240_000) / 1000} s` : '')}
}

export function makeTempDir(prefix = 'muster-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function removeDir(dir: string): void {
  rmSync(dir, {recursive: true, force: true})
}

/** Every file below `dir`, relative, sorted: to assert that nothing (else) was written. */
export function listFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name)
      if (statSync(full).isDirectory()) walk(full)
      else out.push(relative(dir, full))
    }
  }
  walk(dir)
  return out.sort()
}
