// Stack behaviour with the real engine on the embedded file backend: preview Markdown and exit
// codes over several groups, a locked stack's error, and recovery after an interrupted update.
import {expect} from 'chai'
import {spawn, spawnSync as spawnSyncImpl} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {binRun} from '../support/cli.js'
import {findTool} from '../support/integration.js'
import type {MotoServer} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('stacks on the real engine (integration)', function () {
  this.timeout(300_000)
  let moto: MotoServer
  let project: MusterProject

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: {}, api: {}, plain: {}, boot: {packer: false}}))
    const baked = project.muster('packer:run', 'web', '--yes')
    expect(baked.code, baked.stderr).to.equal(0)
  })

  after(async () => {
    project?.cleanup()
    await moto?.stop()
  })

  it('preview exits 0 when nothing would change, with a Markdown table per group', () => {
    const result = project.muster('preview', '--markdown', '--parallel', '2')
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.include('## muster preview')
    for (const group of ['web', 'api', 'plain', 'boot']) expect(result.stdout).to.include(`| ${group} | 0 | 0 | 0 | 0 |`)
  })

  it('preview exits 2 on changes and names the changed property', () => {
    project.writeCookbook('package "nginx"\npackage "jq"\n')
    const result = project.muster('preview', 'web', 'api', '--markdown')
    expect(result.code, result.stderr).to.equal(2)
    expect(result.stdout).to.include('| web | 0 | 0 | 2 | 0 |')
    expect(result.stdout).to.match(/\| replace \| `packer-build` \| `pulumi-nodejs:dynamic\/muster:ShellCommand` \| .*`triggers`/)
    expect(result.stdout).to.include('| api | 0 | 0 | 0 | 0 |')
    const json = project.muster('preview', 'web', '--json')
    expect(json.code).to.equal(2)
    expect((JSON.parse(json.stdout) as {exitCode: number}).exitCode).to.equal(2)
  })

  it('preview exits 1 when a group\'s program fails, and says which', () => {
    // Record a fleet for a group without autoscale behind muster's back: its program refuses.
    const pulumi = findTool('pulumi') as string
    const set = spawnSyncIn(project, pulumi, ['config', 'set', 'muster:fleet', 'true', '--stack', 'plain'])
    expect(set.code, set.stderr).to.equal(0)
    const result = project.muster('preview', 'plain', 'api', '--markdown')
    expect(result.code).to.equal(1)
    expect(result.stdout).to.include('| plain | error | | | |')
    expect(result.stdout, result.stdout).to.include('autoscale: false')
    expect(spawnSyncIn(project, pulumi, ['config', 'set', 'muster:fleet', 'false', '--stack', 'plain']).code).to.equal(0)
  })

  it('a locked stack gives who holds the lock and how to clear it', () => {
    const locks = join(project.dir, '.muster', 'state', '.pulumi', 'locks', 'organization', 'muster', 'api')
    mkdirSync(locks, {recursive: true})
    // What Pulumi's DIY backend writes while an update runs elsewhere.
    writeFileSync(join(locks, 'b7a1e1c4-0000-4000-8000-000000000001.json'), JSON.stringify({pid: 4242, username: 'ops', hostname: 'bastion', timestamp: new Date().toISOString()}))
    const result = project.muster('packer:run', 'api', '--yes')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('the stack of api is locked by another update (pid 4242 of ops on bastion')
    expect(result.stderr).to.include('muster unlock api')
    expect(result.stderr).not.to.match(/\n\s+at /)
    // unlock says who holds it, asks (or --yes), and clears it on the embedded backend.
    const asked = project.muster('unlock', 'api')
    expect(asked.code).to.equal(1)
    expect(asked.stderr).to.include('api: locked by pid 4242 of ops on bastion')
    expect(asked.stderr).to.include('muster unlock api --yes')
    expect(readdirSync(locks)).to.have.length(1)
    const cleared = project.muster('unlock', 'api', '--yes')
    expect(cleared.code, cleared.stderr).to.equal(0)
    expect(cleared.stdout).to.equal('api: lock cleared\n')
    expect(readdirSync(locks)).to.deep.equal([])
    expect(project.muster('unlock', 'api').stdout).to.equal('api: not locked; nothing to clear\n')
  })

  it('after an interrupted bake: the lock it left is named with the way to clear it, then the update recovers', async () => {
    // A packer that hangs, so the update can be killed while the command resource is creating.
    const marker = join(project.dir, 'packer-started')
    const slow = join(project.dir, 'slow-packer.sh')
    writeFileSync(slow, `#!/bin/sh\ntouch '${marker}'\nexec sleep 120\n`)
    chmodSync(slow, 0o755)
    const child = spawn(process.execPath, [binRun, 'packer:run', 'api', '--yes'], {cwd: project.dir, env: {...process.env, ...project.env, MUSTER_PACKER: slow}, detached: true, stdio: 'ignore'})
    for (let i = 0; i < 600 && !existsSync(marker); i++) await sleep(100)
    expect(existsSync(marker), 'the slow packer started').to.equal(true)
    // Kill muster and the pulumi CLI at once, as a lost SSH session would.
    process.kill(-(child.pid as number), 'SIGKILL')
    spawnSyncImpl('pkill', ['-f', 'exec sleep 120|sleep 120'])
    // The engine was killed too hard to stop its provider host; nothing else runs during this test.
    spawnSyncImpl('pkill', ['-f', 'cmd/dynamic-provider/index.js'])
    await sleep(500)

    // The killed update could not release its lock: muster says it is stale and how to clear it.
    const locked = project.muster('packer:run', 'api', '--yes')
    expect(locked.code).to.equal(1)
    expect(locked.stderr).to.match(/the stack of api has a stale lock: held by pid \d+ .*no longer running/)
    expect(locked.stderr).to.include('muster unlock api')
    const unlocked = project.muster('unlock', 'api', '--yes')
    expect(unlocked.code, unlocked.stderr).to.equal(0)
    expect(unlocked.stderr).to.include('no longer running: the lock is stale')
    expect(unlocked.stderr).to.include('left pending operations (creating packer-build)')
    expect(unlocked.stderr).to.include('muster up api --clear-pending')

    // Converging with --clear-pending (a refresh that drops pending creates first) completes the bake.
    const recovered = project.muster('up', 'api', '--clear-pending', '--yes', '--json')
    expect(recovered.code, recovered.stderr).to.equal(0)
    const out = JSON.parse(recovered.stdout) as {groups: Array<{outputs?: {ami?: string}}>}
    expect(out.groups[0]?.outputs?.ami).to.match(/^ami-/)
  })
})

function spawnSyncIn(project: MusterProject, command: string, args: string[]): {code: number; stdout: string; stderr: string} {
  // The same backend and passphrase muster uses: the embedded one.
  const env = {
    ...process.env,
    ...project.env,
    PULUMI_BACKEND_URL: `file://${join(project.dir, '.muster', 'state')}`,
    PULUMI_CONFIG_PASSPHRASE_FILE: join(project.dir, '.muster', 'passphrase'),
  }
  const result = spawnSyncImpl(command, args, {cwd: project.dir, env, encoding: 'utf8'})
  return {code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr}
}
