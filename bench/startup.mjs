// Start-up and large-file benchmarks of the offline verbs (issue 2), as ratios to `node -e 0`.
// Run: npm run build && node bench/startup.mjs [--runs N]
// Plain JavaScript on purpose: a tsx parent process (its esbuild service) slows the children measured.
// Prints medians (ms) and ratios; nothing here is asserted: the numbers go in issue notes.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(fileURLToPath(import.meta.url), '..', '..')
const bin = join(root, 'bin', 'run.js')
const runsFlag = process.argv.indexOf('--runs')
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 15

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function time(label, args, cwd, before) {
  const samples = []
  for (let i = 0; i < runs + 2; i++) {
    before?.()
    const start = process.hrtime.bigint()
    const result = spawnSync(process.execPath, args, {cwd, stdio: ['ignore', 'ignore', 'pipe']})
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (result.status !== 0) throw new Error(`${label} failed: ${result.stderr.toString()}`)
    if (i >= 2) samples.push(ms) // two warm-up runs: file cache
  }
  return median(samples)
}

function largeNodesFile(groups) {
  const nodes = {
    __base__: {
      region: 'us-east-1',
      instance_type: 'm5.large',
      source_ami: 'ami-1ebb2077',
      security_groups: ['external', 'internal'],
      default_attributes: {environment: 'production'},
      run_list: ['recipe[base::server]', 'recipe[base::collect-services]'],
      post_run_list: ['recipe[base::notify-services]', 'recipe[sudo]'],
    },
  }
  for (let i = 0; i < groups; i++) {
    nodes[`group-${i}`] = {
      description: `group ${i}`,
      autoscale: i % 2 ? {timeout: 120, node_min: 1, node_max: 3} : false,
      instance_type: i % 3 ? 'm5.large' : 'c5.xlarge',
      security_groups: [`sg-${i}`],
      default_attributes: {index: i, tier: i % 4},
      run_list: [`recipe[service::worker-${i}]`, `recipe[service::api-${i % 10}]`],
    }
  }
  return JSON.stringify(nodes, null, 2)
}

const node0 = time('node -e 0', ['-e', '0'], root)
const show = time('muster show --json', [bin, 'show', '12_04-bee', '--json'], root)
// The same with two environments (issue 13): every environment is resolved and checked on load.
const envDir = mkdtempSync(join(tmpdir(), 'muster-bench-env-'))
writeFileSync(join(envDir, 'nodes.json'), readFileSync(join(root, 'test', 'fixtures', 'environments-nodes.json')))
const showEnv = time('muster show --json --env production (two environments)', [bin, 'show', '12_04-bee', '--json', '--env', 'production'], envDir)
rmSync(envDir, {recursive: true, force: true})
// The 1,000 roles are 1,000 atomic writes (temp file + rename): on a VM disk the file system's
// metadata work dominates, so measure on the disk and, where there is one, on tmpfs.
const rolesIn = (base) => {
  const dir = mkdtempSync(join(base, 'muster-bench-'))
  writeFileSync(join(dir, 'nodes.json'), largeNodesFile(1000))
  const ms = time('muster role:create (1,000 groups)', [bin, 'role:create'], dir, () => rmSync(join(dir, 'roles'), {recursive: true, force: true}))
  rmSync(dir, {recursive: true, force: true})
  return ms
}
const roles = rolesIn(tmpdir())
const rolesTmpfs = existsSync('/dev/shm') ? rolesIn('/dev/shm') : undefined

const cpu = cpus()[0]?.model ?? 'unknown cpu'
console.log(`machine: ${cpus().length} × ${cpu}, node ${process.version}; ${runs} runs each, median`)
console.log(`node -e 0                          ${node0.toFixed(1)} ms`)
console.log(`muster show 12_04-bee --json       ${show.toFixed(1)} ms  (${(show / node0).toFixed(2)}x node -e 0; goal ≤ 3x)`)
console.log(`  … with two environments, --env production  ${showEnv.toFixed(1)} ms  (${(showEnv / node0).toFixed(2)}x node -e 0)`)
console.log(`muster role:create, 1,000 groups   ${roles.toFixed(1)} ms  (${(roles / node0).toFixed(2)}x node -e 0; goal ≤ 10x) in ${tmpdir()}`)
if (rolesTmpfs !== undefined) console.log(`  the same on tmpfs (/dev/shm)     ${rolesTmpfs.toFixed(1)} ms  (${(rolesTmpfs / node0).toFixed(2)}x node -e 0)`)
