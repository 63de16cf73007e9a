// The real Pulumi engine (CLI built by scripts/ci/install-pulumi.sh) driven through the Automation
// API with inline programs, on a file backend and on an S3 backend served by moto.
//
// Each resource appends to a log file when it is created or deleted, so the tests see what the
// engine really did, not only what it reports. The resource is a Node dynamic provider (the host
// ships in @pulumi/pulumi), the kind muster's own command resources are.
import {CreateBucketCommand, ListObjectsV2Command, S3Client} from '@aws-sdk/client-s3'
import * as pulumi from '@pulumi/pulumi'
import {ConcurrentUpdateError, type PulumiFn, type Stack} from '@pulumi/pulumi/automation/index.js'
import {expect} from 'chai'
import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {requireTool} from '../support/integration.js'
import {startMoto, type MotoServer} from '../support/moto.js'
import {createPulumiSandbox, type PulumiSandbox} from '../support/pulumi.js'

// The dynamic provider below is serialized to source and run in another process; Pulumi's closure
// serializer turns a CommonJS built-in module into `require("fs")` there, but cannot serialize an
// ESM namespace object, hence createRequire rather than an import.
const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs')

type ProgramFactory = (log: string, trigger: string) => PulumiFn

interface LoggerInputs {
  log: string
  triggers: string[]
}

interface LoggerOutputs extends LoggerInputs {
  stdout: string
}

const loggerProvider: pulumi.dynamic.ResourceProvider<LoggerInputs, LoggerOutputs> = {
  async create(inputs) {
    fs.appendFileSync(inputs.log, 'create\n')
    const stdout = `hello ${process.hrtime.bigint()}`
    return {id: stdout, outs: {...inputs, stdout}}
  },
  async diff(_id, olds, news) {
    const replace = JSON.stringify(olds.triggers) !== JSON.stringify(news.triggers)
    return {changes: replace, replaces: replace ? ['triggers'] : []}
  },
  async delete(_id, props) {
    fs.appendFileSync(props.log, `delete ${props.stdout}\n`)
  },
}

class Logger extends pulumi.dynamic.Resource {
  declare readonly stdout: pulumi.Output<string>

  constructor(name: string, args: {log: string; triggers: string[]}) {
    super(loggerProvider, name, {...args, stdout: undefined}, {})
  }
}

const dynamicProgram: ProgramFactory = (log, trigger) => async () => {
  const logger = new Logger('writer', {log, triggers: [trigger]})
  return {stdout: logger.stdout, log}
}

interface ProviderCase {
  name: string
  program: ProgramFactory
  /** Plugin binary the case needs besides the CLI. */
  plugin?: string
}

const providers: ProviderCase[] = [
  {name: 'a Node dynamic provider', program: dynamicProgram},
]

function logLines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []
}

function stringOutput(outputs: Record<string, {value: unknown}>, key: string): string {
  const value = outputs[key]?.value
  expect(value, `stack output ${key}`).to.be.a('string')
  return value as string
}

/**
 * preview → up → up (no changes) → up with new triggers (replace) → destroy on one stack.
 * `sandbox` is read lazily: it is made in a before hook of the caller.
 */
function lifecycle(getSandbox: () => PulumiSandbox, provider: ProviderCase, stackName: string): void {
  describe(`lifecycle with ${provider.name}`, function () {
    let stack: Stack
    let log: string
    let firstToken: string
    let secondToken: string

    before(async function () {
      if (provider.plugin) requireTool(this, provider.plugin, 'scripts/ci/install-pulumi.sh')
      const sandbox = getSandbox()
      log = join(sandbox.dir, `${stackName}.log`)
      stack = await sandbox.stack({stackName, program: provider.program(log, 'one')})
    })

    it('previews a create and runs nothing', async function () {
      const preview = await stack.preview()
      // The stack resource itself plus the writer.
      expect(preview.changeSummary).to.deep.equal({create: 2})
      expect(logLines(log)).to.deep.equal([])
    })

    it('up runs the create and reads the outputs back', async function () {
      const result = await stack.up()
      expect(result.summary.result).to.equal('succeeded')
      expect(result.summary.resourceChanges).to.deep.equal({create: 2})
      expect(logLines(log)).to.deep.equal(['create'])
      firstToken = stringOutput(result.outputs, 'stdout')
      expect(firstToken).to.match(/^hello \d+$/)
      // Read back from the backend, not just from the up result.
      const outputs = await stack.outputs()
      expect(outputs.stdout?.value).to.equal(firstToken)
      expect(outputs.log?.value).to.equal(log)
    })

    it('a second up changes nothing', async function () {
      const result = await stack.up()
      expect(result.summary.resourceChanges).to.deep.equal({same: 2})
      expect(logLines(log)).to.deep.equal(['create'])
      expect(stringOutput(result.outputs, 'stdout')).to.equal(firstToken)
    })

    it('new triggers replace the resource: create again, then delete the old one', async function () {
      const sandbox = getSandbox()
      stack = await sandbox.stack({stackName, program: provider.program(log, 'two')})
      const preview = await stack.preview()
      expect(preview.changeSummary).to.deep.equal({replace: 1, same: 1})
      expect(logLines(log)).to.deep.equal(['create'])

      const result = await stack.up()
      expect(result.summary.resourceChanges).to.deep.equal({replace: 1, same: 1})
      secondToken = stringOutput(result.outputs, 'stdout')
      expect(secondToken).to.match(/^hello \d+$/).and.not.equal(firstToken)
      // Pulumi replaces create-before-delete by default.
      expect(logLines(log)).to.deep.equal(['create', 'create', `delete ${firstToken}`])
    })

    it('destroy deletes the resource and empties the stack', async function () {
      const result = await stack.destroy()
      expect(result.summary.result).to.equal('succeeded')
      expect(result.summary.resourceChanges).to.deep.equal({delete: 2})
      expect(logLines(log)).to.deep.equal(['create', 'create', `delete ${firstToken}`, `delete ${secondToken}`])
      const state = await stack.exportStack()
      expect(state.deployment.resources ?? []).to.deep.equal([])
    })
  })
}

/** Two updates of one stack at once: the second must hit the backend's lock, not race the first. */
function concurrentUpdates(getSandbox: () => PulumiSandbox, stackName: string): void {
  describe('concurrent updates', function () {
    it('a second concurrent update of the stack fails with the lock error', async function () {
      const sandbox = getSandbox()
      let programStarted!: () => void
      const started = new Promise<void>((resolve) => {
        programStarted = resolve
      })
      let releaseProgram!: () => void
      const released = new Promise<void>((resolve) => {
        releaseProgram = resolve
      })
      // The engine runs the program only after the update has taken the lock, so while the program
      // waits the lock is certainly held.
      const holder = await sandbox.stack({
        stackName,
        async program() {
          programStarted()
          await released
          return {held: true}
        },
      })
      const contender = await sandbox.stack({stackName, program: async () => ({held: false})})

      const first = holder.up()
      try {
        // If the first update dies before its program runs, fail now rather than at the timeout.
        await Promise.race([
          started,
          first.then(() => {
            throw new Error('the first update finished without running its program')
          }),
        ])
        let error: unknown
        try {
          await contender.up()
        } catch (caught) {
          error = caught
        }
        expect(error, 'the second up should fail').to.be.instanceOf(ConcurrentUpdateError)
        expect(String(error)).to.include('the stack is currently locked by')
      } finally {
        releaseProgram()
      }
      const result = await first
      expect(result.summary.result).to.equal('succeeded')
      expect(result.outputs.held?.value).to.equal(true)
      // The lock is gone once the first update is done.
      const after = await contender.up()
      expect(after.outputs.held?.value).to.equal(false)
    })
  })
}

describe('Pulumi engine (real CLI, Automation API)', function () {
  this.timeout(300_000)

  before(function () {
    requireTool(this, 'pulumi', 'scripts/ci/install-pulumi.sh')
  })

  describe('on a file backend', function () {
    let sandbox: PulumiSandbox | undefined

    before(async function () {
      sandbox = await createPulumiSandbox()
      expect(sandbox.backendUrl).to.match(/^file:\/\//)
    })

    after(async function () {
      await sandbox?.cleanup()
    })

    const get = (): PulumiSandbox => {
      if (!sandbox) throw new Error('sandbox not created')
      return sandbox
    }

    for (const [i, provider] of providers.entries()) lifecycle(get, provider, `file-${i}`)
    concurrentUpdates(get, 'file-lock')
  })

  describe('on an S3 backend served by moto', function () {
    const bucket = 'muster-pulumi-state'
    let moto: MotoServer | undefined
    let sandbox: PulumiSandbox | undefined
    let s3: S3Client | undefined

    before(async function () {
      requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
      moto = await startMoto({sourceImages: []})
      s3 = new S3Client({
        endpoint: moto.endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'},
      })
      await s3.send(new CreateBucketCommand({Bucket: bucket}))
      // gocloud.dev's s3blob (AWS SDK v2) spelling. Pulumi 3.248's diy backend also rewrites the
      // v1-era `endpoint=HOST:PORT&disableSSL=true&s3ForcePathStyle=true` into this; and without
      // `endpoint` the SDK would still reach moto through AWS_ENDPOINT_URL in moto.env.
      const query = new URLSearchParams({endpoint: moto.endpoint, region: 'us-east-1', use_path_style: 'true'})
      sandbox = await createPulumiSandbox({backendUrl: `s3://${bucket}?${query}`, env: moto.env})
    })

    after(async function () {
      s3?.destroy()
      await sandbox?.cleanup()
      await moto?.stop()
    })

    const get = (): PulumiSandbox => {
      if (!sandbox) throw new Error('sandbox not created')
      return sandbox
    }

    for (const [i, provider] of providers.entries()) lifecycle(get, provider, `s3-${i}`)
    concurrentUpdates(get, 's3-lock')

    // A describe, so that it runs after the suites above (mocha runs a suite's own tests first).
    describe('state', function () {
      it('is kept in the bucket, one file per stack', async function () {
        if (!s3) throw new Error('no S3 client')
        const listing = await s3.send(new ListObjectsV2Command({Bucket: bucket, Prefix: '.pulumi/stacks/'}))
        const keys = (listing.Contents ?? []).map((object) => object.Key ?? '')
        for (const stackName of [...providers.map((_, i) => `s3-${i}`), 's3-lock']) {
          expect(keys, keys.join(', ')).to.include(`.pulumi/stacks/muster-test/${stackName}.json`)
        }
      })
    })
  })
})
