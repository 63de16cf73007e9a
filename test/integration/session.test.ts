// muster's stack session on the real engine: a group's stack opened through StackSession, programmed
// with muster's own command resource (ShellCommand), previewed, updated, replaced and destroyed
// through GroupStack; a held lock and a missing stack as muster reports them. Once on the embedded
// file backend muster makes, once on an S3 backend (moto) named by PULUMI_BACKEND_URL.
import {CreateBucketCommand, ListObjectsV2Command, S3Client} from '@aws-sdk/client-s3'
import {expect} from 'chai'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../../src/errors.js'
import {StackSession} from '../../src/stacks/session.js'
import {ShellCommand} from '../../src/stacks/shell-command.js'
import type {GroupStack} from '../../src/stacks/workspace.js'
import {makeTempDir, removeDir} from '../support/cli.js'
import {pathWithTools, requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {PULUMI_PASSPHRASE, pulumiEnv} from '../support/pulumi.js'

/** A program of one command resource that notes each run in runs.log and prints a fresh token. */
function writerProgram(trigger: string) {
  return async (): Promise<Record<string, unknown>> => {
    const writer = new ShellCommand('writer', {create: 'echo run >> runs.log && date +%s%N', triggers: [trigger], log: 'logs/writer.log'})
    return {stdout: writer.stdout}
  }
}

function runs(root: string): number {
  const log = join(root, 'runs.log')
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').length : 0
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

interface Fixture {
  root: string
  session: StackSession
}

function lifecycle(get: () => Fixture, group: string): void {
  it('previews a create and runs nothing', async function () {
    const {root, session} = get()
    const stack = await session.openOrCreate(group)
    stack.setProgram(writerProgram('one'))
    const preview = await stack.preview(undefined)
    expect(preview.counts).to.deep.equal({create: 1, update: 0, replace: 0, delete: 0})
    expect(preview.changes.map((c) => [c.name, c.type])).to.deep.equal([['writer', 'pulumi-nodejs:dynamic/muster:ShellCommand']])
    expect(runs(root)).to.equal(0)
  })

  it('up runs the command once and returns its output; a second up changes nothing', async function () {
    const {root, session} = get()
    const stack = await session.require(group)
    stack.setProgram(writerProgram('one'))
    const first = await stack.up(undefined)
    expect(first.changes.counts.create).to.equal(1)
    expect(String(first.outputs.stdout)).to.match(/^\d+\n$/)
    expect(await stack.outputs()).to.deep.equal(first.outputs)
    const second = await stack.up(undefined)
    expect(second.changes.counts).to.deep.equal({create: 0, update: 0, replace: 0, delete: 0})
    expect(second.outputs).to.deep.equal(first.outputs)
    expect(runs(root)).to.equal(1)
  })

  it('a new trigger replaces the command (runs it again), naming the property; destroy deletes it', async function () {
    const {root, session} = get()
    const stack = await session.require(group)
    const before = await stack.outputs()
    stack.setProgram(writerProgram('two'))
    const preview = await stack.preview(undefined)
    expect(preview.counts.replace).to.equal(1)
    expect(preview.changes[0]?.properties).to.include('triggers')
    const replaced = await stack.up(undefined)
    expect(replaced.changes.counts.replace).to.equal(1)
    expect(replaced.outputs.stdout).to.not.equal(before.stdout)
    expect(runs(root)).to.equal(2)
    const destroyed = await stack.destroy({previewOnly: false, remove: false})
    expect(destroyed.counts.delete).to.equal(1)
    expect(await stack.outputs()).to.deep.equal({})
  })

  it('a second update while the first holds the lock is a user error naming the way out', async function () {
    const {session} = get()
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const holder = await session.require(group)
    // The engine runs the program only after the update has taken the lock.
    holder.setProgram(async () => {
      started()
      await released
      return {held: true}
    })
    const contender: GroupStack = await session.require(group)
    contender.setProgram(async () => ({held: false}))
    const first = holder.up(undefined)
    try {
      await Promise.race([running, first.then(() => Promise.reject(new Error('the first update finished without running its program')))])
      const error = await rejection(contender.up(undefined))
      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).message).to.include(`the stack of ${group} is locked by another update`)
      expect((error as UserError).hint).to.include(`clear the lock with: muster unlock ${group}`)
    } finally {
      release()
    }
    expect((await first).outputs.held).to.equal(true)
    expect((await contender.up(undefined)).outputs.held).to.equal(false)
  })
}

describe('stack session on the real engine (integration)', function () {
  this.timeout(300_000)
  const savedPath = process.env.PATH

  before(function () {
    requireTool(this, 'pulumi', 'scripts/ci/install-pulumi.sh')
    // muster finds the pulumi CLI on PATH, as it does for a user.
    process.env.PATH = pathWithTools()
  })

  after(function () {
    process.env.PATH = savedPath
  })

  describe('on the embedded file backend', function () {
    let fixture: Fixture | undefined

    before(function () {
      const root = makeTempDir('muster-session-')
      // No backend and no passphrase: muster makes its embedded backend and passphrase file.
      const {PULUMI_BACKEND_URL: _url, PULUMI_CONFIG_PASSPHRASE: _passphrase, ...env} = pulumiEnv(root, '')
      fixture = {root, session: StackSession.start(root, env)}
    })

    after(function () {
      if (fixture) removeDir(fixture.root)
    })

    const get = (): Fixture => {
      if (!fixture) throw new Error('no fixture')
      return fixture
    }

    it('makes the embedded backend with its passphrase file', function () {
      const {root, session} = get()
      expect(session.backend.source).to.equal('embedded')
      expect(existsSync(join(root, '.muster', 'passphrase'))).to.equal(true)
    })

    it('a group without a stack opens as undefined, and require says how to make one', async function () {
      const {session} = get()
      expect(await session.openExisting('nothing')).to.equal(undefined)
      const error = await rejection(session.require('nothing'))
      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).message).to.equal('group nothing has no stack yet')
    })

    lifecycle(get, 'web')
  })

  describe('on an S3 backend served by moto', function () {
    const bucket = 'muster-pulumi-state'
    let moto: MotoServer | undefined
    let s3: S3Client | undefined
    let fixture: Fixture | undefined

    before(async function () {
      requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
      moto = await startMoto({sourceImages: []})
      s3 = new S3Client({endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}})
      await s3.send(new CreateBucketCommand({Bucket: bucket}))
      // gocloud.dev's s3blob spelling (Pulumi's diy backend also rewrites the v1-era one into it).
      const query = new URLSearchParams({endpoint: moto.endpoint, region: 'us-east-1', use_path_style: 'true'})
      const root = makeTempDir('muster-session-s3-')
      const env = {...pulumiEnv(root, `s3://${bucket}?${query}`, moto.env), PULUMI_CONFIG_PASSPHRASE: PULUMI_PASSPHRASE}
      fixture = {root, session: StackSession.start(root, env)}
    })

    after(async function () {
      s3?.destroy()
      if (fixture) removeDir(fixture.root)
      await moto?.stop()
    })

    const get = (): Fixture => {
      if (!fixture) throw new Error('no fixture')
      return fixture
    }

    it('takes the backend from PULUMI_BACKEND_URL', function () {
      expect(get().session.backend.source).to.equal('env')
      expect(get().session.backend.url).to.match(/^s3:\/\//)
    })

    lifecycle(get, 'api')

    // A describe, so that it runs after the tests above (mocha runs a suite's own tests first).
    describe('state', function () {
      it('is kept in the bucket, one file per stack of the project', async function () {
        if (!s3) throw new Error('no S3 client')
        const listing = await s3.send(new ListObjectsV2Command({Bucket: bucket, Prefix: '.pulumi/stacks/'}))
        const keys = (listing.Contents ?? []).map((object) => object.Key ?? '')
        expect(keys, keys.join(', ')).to.include('.pulumi/stacks/muster/api.json')
      })
    })
  })
})
