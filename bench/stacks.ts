// Stack benchmarks (issue 4), against the real engine, Packer and moto from scripts/ci/:
//  1. overhead of `muster packer:run GROUP --yes` over a plain Automation API `up` of the same
//     program on the same backend (bench/plain-up.mjs), each forced to rebake;
//  2. `muster preview` of 16 groups with --parallel 4 against --parallel 1 (sequential).
// Run: npm run build && npx tsx bench/stacks.ts [--runs N]. Prints medians; asserts nothing.
import {spawnSync} from 'node:child_process'
import {cpus} from 'node:os'
import {join} from 'node:path'

import {binRun, repoRoot} from '../test/support/cli.js'
import {startMoto} from '../test/support/moto.js'
import {createMusterProject} from '../test/support/project.js'

const runsFlag = process.argv.indexOf('--runs')
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 5

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function timed(command: string, args: string[], cwd: string, env: Record<string, string>): number {
  const start = process.hrtime.bigint()
  const result = spawnSync(command, args, {cwd, env: {...process.env, ...env}, encoding: 'utf8', timeout: 600_000, killSignal: 'SIGKILL'})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0 && result.status !== 2) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stderr}`)
  return ms
}

const moto = await startMoto()
const groups = Object.fromEntries(Array.from({length: 16}, (_, i) => [`g${i}`, {}]))
const project = createMusterProject(moto, {web: {}, ...groups})
try {
  const {dir, env} = project
  // 1. packer:run vs a plain up, alternating, each with a new cookbook (muster) or trigger (plain).
  const muster: number[] = []
  const plain: number[] = []
  timed(process.execPath, [binRun, 'packer:run', 'web', '--yes'], dir, env) // create the stack
  for (let i = 0; i < runs; i++) {
    project.writeCookbook(`# run ${i}\n`)
    muster.push(timed(process.execPath, [binRun, 'packer:run', 'web', '--yes'], dir, env))
    plain.push(timed(process.execPath, [join(repoRoot, 'bench', 'plain-up.mjs'), 'web', `plain-${i}`], dir, env))
  }
  // 2. previews of 16 baked groups.
  timed(process.execPath, [binRun, 'packer:run', '--yes', '--parallel', '4'], dir, env)
  project.writeCookbook('# changed for the previews\n')
  const parallel: number[] = []
  const sequential: number[] = []
  const sixteen = Object.keys(groups)
  for (let i = 0; i < runs; i++) {
    parallel.push(timed(process.execPath, [binRun, 'preview', ...sixteen, '--parallel', '4'], dir, env))
    sequential.push(timed(process.execPath, [binRun, 'preview', ...sixteen, '--parallel', '1'], dir, env))
  }
  const m = median(muster)
  const p = median(plain)
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}; ${runs} runs each, medians`)
  console.log(`muster packer:run --yes (rebake)      ${(m / 1000).toFixed(2)} s`)
  console.log(`plain Automation API up (rebake)      ${(p / 1000).toFixed(2)} s   overhead ${(((m - p) / p) * 100).toFixed(1)}% (goal ≤ 10%)`)
  const par = median(parallel)
  const seq = median(sequential)
  console.log(`preview 16 groups --parallel 4        ${(par / 1000).toFixed(2)} s`)
  console.log(`preview 16 groups --parallel 1        ${(seq / 1000).toFixed(2)} s   ratio ${(par / seq).toFixed(2)}x (goal ≤ 0.4x)`)
} finally {
  project.cleanup()
  await moto.stop()
}
