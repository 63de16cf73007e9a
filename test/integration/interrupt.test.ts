// Ctrl-C and kill -9 during a bake, with the real engine, Packer and moto. Packer's EC2 calls go
// through a gate in front of moto that can hold StopInstances, so the bake is caught mid-way:
// its temporary instance runs, no image exists yet. After each interruption the test checks what
// is left: processes, the stack's lock, instances and images in moto, and that a rerun finishes
// without a duplicate image.
import {DescribeImagesCommand, DescribeInstancesCommand} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {createServer, request, type Server} from 'node:http'
import {join} from 'node:path'

import {binRun, type CliResult} from '../support/cli.js'
import {requireTool} from '../support/integration.js'
import {motoEc2, type MotoServer, startMoto} from '../support/moto.js'
import {createMusterProject, type MusterProject} from '../support/project.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** An HTTP proxy to moto that holds StopInstances while closed. */
interface Gate {
  url: string
  close(): void
  open(): void
  /** Resolves once a StopInstances call is being held. */
  held(timeoutMs: number): Promise<void>
  stop(): Promise<void>
}

async function startGate(target: string): Promise<Gate> {
  let closed = false
  let waiting: Array<() => void> = []
  let holding = 0
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      if (closed && body.toString('utf8').includes('Action=StopInstances')) {
        holding++
        // Held until opened, or until the client gives up (Packer cancelled).
        while (closed && !req.socket.destroyed) await sleep(100)
        holding--
        if (req.socket.destroyed) return
      }
      const url = new URL(req.url ?? '/', target)
      const upstream = request(url, {method: req.method, headers: req.headers}, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      upstream.on('error', () => res.destroy())
      upstream.end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      closed = true
    },
    open: () => {
      closed = false
      for (const wake of waiting) wake()
      waiting = []
    },
    async held(timeoutMs) {
      const deadline = Date.now() + timeoutMs
      while (holding === 0) {
        if (Date.now() > deadline) throw new Error('Packer never reached StopInstances')
        await sleep(100)
      }
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** Processes started for this project (muster, pulumi, plugin hosts, sh, packer): MUSTER_ROOT names it. */
function projectProcesses(dir: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8')
      if (!environ.split('\0').includes(`MUSTER_ROOT=${dir}`)) continue
      found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`)
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found
}

interface Running {
  child: ChildProcess
  output: () => CliResult
  exited: Promise<number | string>
}

describe('interrupting a bake (integration)', function () {
  this.timeout(600_000)
  let moto: MotoServer
  let gate: Gate
  let project: MusterProject

  before(async function () {
    requireTool(this, 'pulumi', 'scripts/ci/install-pulumi.sh')
    requireTool(this, 'packer', 'scripts/ci/install-packer.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    moto = await startMoto()
    gate = await startGate(moto.endpoint)
    // Packer's EC2 calls go through the gate; muster's own (adoption, retention) straight to moto.
    project = createMusterProject({...moto, endpoint: gate.url}, {api: {}})
  })

  after(async () => {
    gate?.open()
    project?.cleanup()
    await gate?.stop()
    await moto?.stop()
  })

  const start = (...args: string[]): Running => {
    // Its own process group, as a shell gives a job: a terminal's Ctrl-C goes to that group.
    const child = spawn(process.execPath, [binRun, ...args], {cwd: project.dir, env: {...process.env, ...project.env}, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')))
    return {child, exited, output: () => ({code: -1, stdout, stderr})}
  }
  // Never spawnSync here: it would stop this process's event loop, and with it the gate.
  const muster = async (...args: string[]): Promise<CliResult> => {
    const run = start(...args)
    const code = await within(`muster ${args.join(' ')}`, run.exited, 240_000)
    return {...run.output(), code: typeof code === 'number' ? code : -1}
  }
  const within = async <T>(what: string, promise: Promise<T>, ms: number): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
  }
  const images = async (): Promise<string[]> => {
    const out = await motoEc2(moto).send(new DescribeImagesCommand({Owners: ['self'], Filters: [{Name: 'tag:muster:group', Values: ['api']}]}))
    return (out.Images ?? []).map((i) => i.ImageId ?? '').sort()
  }
  const bakeInstances = async (): Promise<Array<{id: string; state: string}>> => {
    const out = await motoEc2(moto).send(new DescribeInstancesCommand({Filters: [{Name: 'tag:Name', Values: ['muster-bake-api']}]}))
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => ({id: i.InstanceId ?? '', state: i.State?.Name ?? ''}))
  }
  const locks = (): string[] => {
    const dir = join(project.dir, '.muster', 'state', '.pulumi', 'locks', 'organization', 'muster', 'api')
    return existsSync(dir) ? readdirSync(dir) : []
  }

  it('Ctrl-C mid-bake: Packer removes its instance, the engine stops, nothing is left, exit 130 with what to do; the rerun bakes one image', async () => {
    gate.close()
    const run = start('packer:run', 'api', '--yes')
    await within('the bake', gate.held(180_000), 190_000)
    expect((await bakeInstances()).map((i) => i.state)).to.deep.equal(['running'])
    process.kill(-(run.child.pid as number), 'SIGINT')
    const code = await within('muster after Ctrl-C', run.exited, 180_000)
    const {stderr} = run.output()
    expect(code, stderr).to.equal(130)
    expect(stderr).to.include('Interrupted: stopping after the current step')
    expect(stderr).to.include('interrupted (Ctrl-C); what is left:')
    expect(stderr).to.match(/\n {2}api: the engine stopped after its current step; no step finished; stopped: create packer-build \(a stopped bake leaves no image: Packer removed its temporary instance\); the stack is unlocked\n/)
    expect(stderr).to.include('Next: run the same command again')
    // Nothing of the run is left: no muster, pulumi, plugin host, shell or packer.
    expect(projectProcesses(project.dir)).to.deep.equal([])
    expect(locks()).to.deep.equal([])
    // Packer cancelled its build: its instance is terminated and no image was made.
    expect((await bakeInstances()).map((i) => i.state)).to.deep.equal(['terminated'])
    expect(await images()).to.deep.equal([])

    gate.open()
    const rerun = await muster('packer:run', 'api', '--yes')
    expect(rerun.code, rerun.stderr).to.equal(0)
    const after = await images()
    expect(after).to.have.length(1)
    expect(rerun.stdout).to.equal(`api: baked ${after[0]}\n`)
  })

  it('kill -9 of muster mid-bake: after unlocking, the rerun adopts the image the orphaned Packer finished instead of baking another', async () => {
    project.writeCookbook('package "nginx"\npackage "jq"\n')
    const before = await images()
    gate.close()
    const run = start('packer:run', 'api', '--yes')
    await within('the bake', gate.held(180_000), 190_000)
    process.kill(run.child.pid as number, 'SIGKILL')
    await run.exited
    gate.open()
    // Packer goes on alone and finishes the image; then everything of the run ends.
    for (let i = 0; i < 1200 && projectProcesses(project.dir).length > 0; i++) await sleep(100)
    expect(projectProcesses(project.dir), run.output().stderr).to.deep.equal([])
    const orphans = (await images()).filter((id) => !before.includes(id))
    expect(orphans).to.have.length(1)

    // The killed update left its lock: stale, says muster, and unlock clears it.
    const locked = await muster('packer:run', 'api', '--yes')
    expect(locked.code).to.equal(1)
    expect(locked.stderr).to.match(/the stack of api has a stale lock: held by pid \d+ .*no longer running/)
    expect(locked.stderr).to.include('muster unlock api')
    const unlocked = await muster('unlock', 'api', '--yes')
    expect(unlocked.code, unlocked.stderr).to.equal(0)
    expect(unlocked.stdout).to.equal('api: lock cleared\n')
    expect(unlocked.stderr).to.include('muster up api --clear-pending')
    expect(locks()).to.deep.equal([])

    // Converging bakes again: the bake finds the image the orphaned Packer finished and adopts it.
    const recovered = await muster('up', 'api', '--clear-pending', '--yes')
    expect(recovered.code, recovered.stderr).to.equal(0)
    expect(recovered.stderr).to.include(`${orphans[0]} was baked from this template and these cookbooks by a bake whose muster was stopped: adopting it`)
    expect((await images()).filter((id) => !before.includes(id))).to.deep.equal(orphans)
    const again = await muster('packer:run', 'api', '--yes')
    expect(again.code, again.stderr).to.equal(0)
    expect(again.stdout).to.equal(`api: ${orphans[0]} is current, not rebaked\n`)
    expect((await images()).filter((id) => !before.includes(id))).to.deep.equal(orphans)
  })
})
