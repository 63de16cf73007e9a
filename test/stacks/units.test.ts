// Pure pieces of the stack layer: intent ↔ config, engine events → changes, Markdown, errors, bounded parallelism.
import type {EngineEvent} from '@pulumi/pulumi/automation/index.js'
import {CommandError, ConcurrentUpdateError, StackNotFoundError} from '@pulumi/pulumi/automation/index.js'
import {expect} from 'chai'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../../src/errors.js'
import {collectChanges, hasChanges} from '../../src/stacks/changes.js'
import {lockDir, lockHolders} from '../../src/stacks/locks.js'
import {emptyIntent, intentFromConfig, intentToConfig} from '../../src/stacks/intent.js'
import {mapBounded} from '../../src/lib/parallel.js'
import {translatePulumiError} from '../../src/stacks/workspace.js'
import {formatMarkdown} from '../../src/ui/changes.js'

const step = (op: string, type: string, name: string, diffs: string[] = []): EngineEvent =>
  ({sequence: 0, timestamp: 0, resourcePreEvent: {metadata: {op, urn: `urn:pulumi:web::muster::${type}::${name}`, type, provider: '', diffs}}}) as unknown as EngineEvent

describe('stack intent', () => {
  it('round-trips through stack config', () => {
    const intent = {...emptyIntent(), bake: true, keep: 3, fleet: true, generations: [1, 2], instances: [{name: 'a', zone: 'us-east-1a', publicKey: 'ssh-ed25519 AAAA'}], cleanedAt: '2026-11-25T10:00:00.000Z'}
    expect(intentFromConfig(intentToConfig(intent))).to.deep.equal(intent)
  })

  it('an empty config is the empty intent; a bad keep falls back to the default', () => {
    expect(intentFromConfig({})).to.deep.equal(emptyIntent())
    expect(intentFromConfig({'muster:keep': {value: '0'}}).keep).to.equal(10)
  })
})

describe('engine events → changes', () => {
  it('folds steps per resource, leaves out the stack and providers, counts ops', () => {
    const set = collectChanges('web', [
      step('same', 'pulumi:pulumi:Stack', 'muster-web'),
      step('create', 'pulumi:providers:command', 'default'),
      step('create-replacement', 'command:local:Command', 'packer-build', ['triggers']),
      step('replace', 'command:local:Command', 'packer-build', ['triggers']),
      step('delete-replaced', 'command:local:Command', 'packer-build'),
      step('create', 'muster:stack:Retention', 'retention'),
      step('same', 'muster:stack:Bake', 'bake'),
    ])
    expect(set.counts).to.deep.equal({create: 1, update: 0, replace: 1, delete: 0})
    expect(set.changes.map((c) => [c.name, c.op])).to.deep.equal([
      ['packer-build', 'replace'],
      ['retention', 'create'],
      ['bake', 'same'],
    ])
    expect(set.changes[0]?.properties).to.deep.equal(['triggers'])
    expect(hasChanges(set)).to.equal(true)
    expect(hasChanges(collectChanges('web', [step('same', 'muster:stack:Bake', 'bake')]))).to.equal(false)
  })

  it('Markdown carries counts per group, changed resources with properties, and errors', () => {
    const set = collectChanges('web', [step('update', 'aws:ec2/launchTemplate:LaunchTemplate', 'template', ['imageId', 'userData'])])
    const md = formatMarkdown([set, collectChanges('db', [])], [{stack: 'api', message: 'boom'}])
    expect(md).to.include('| web | 0 | 1 | 0 | 0 |')
    expect(md).to.include('| db | 0 | 0 | 0 | 0 |')
    expect(md).to.include('| update | `template` | `aws:ec2/launchTemplate:LaunchTemplate` | `imageId`, `userData` |')
    expect(md).to.include('| api | error | | | |')
    expect(md).to.include('### api: error')
    expect(md).not.to.include('### db')
  })
})

describe('Pulumi errors → user errors', () => {
  const commandResult = (stderr: string) => ({stdout: '', stderr, code: 255, err: undefined, toString: () => `code: 255\n stdout: \n stderr: ${stderr}\n err?: \n`})

  it('a locked stack names the group and how to clear the lock', () => {
    const error = translatePulumiError(new ConcurrentUpdateError(commandResult('error: the stack is currently locked by 1 lock(s)') as never), 'web')
    expect(error).to.be.instanceOf(UserError)
    expect((error as UserError).message).to.include('the stack of web is locked by another update')
    expect((error as UserError).hint).to.include('muster unlock web')
  })

  it('a lock whose holder is gone from this host is called stale', () => {
    const locks = [{file: 'x.json', pid: 999_999_999, username: 'ops', hostname: hostname(), timestamp: '2026-01-01T00:00:00Z', state: 'stale' as const}]
    const error = translatePulumiError(new ConcurrentUpdateError(commandResult('error: the stack is currently locked by 1 lock(s)') as never), 'web', locks) as UserError
    expect(error.message).to.equal(`the stack of web has a stale lock: held by pid 999999999 of ops on ${hostname()} since 2026-01-01T00:00:00Z, no longer running: the lock is stale`)
    expect(error.hint).to.include('muster unlock web')
  })

  it('reads lock files: a dead pid on this host is stale, another host is unknown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muster-locks-'))
    try {
      writeFileSync(join(dir, 'a.json'), JSON.stringify({pid: 999_999_999, hostname: hostname()}))
      writeFileSync(join(dir, 'b.json'), JSON.stringify({pid: process.pid, hostname: hostname()}))
      writeFileSync(join(dir, 'c.json'), JSON.stringify({pid: 1, hostname: 'elsewhere'}))
      writeFileSync(join(dir, 'd.json'), 'not json')
      expect(lockHolders(dir)?.map((h) => h.state)).to.deep.equal(['stale', 'live', 'unknown', 'unknown'])
      expect(lockHolders(join(dir, 'missing'))).to.deep.equal([])
      expect(lockHolders(undefined)).to.equal(undefined)
      expect(lockDir('file:///srv/state', 'muster', 'web')).to.equal('/srv/state/.pulumi/locks/organization/muster/web')
      expect(lockDir('s3://bucket', 'muster', 'web')).to.equal(undefined)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('a missing stack says which verb creates it', () => {
    const error = translatePulumiError(new StackNotFoundError(commandResult('no stack named web found') as never), 'web') as UserError
    expect(error.message).to.equal('group web has no stack yet')
    expect(error.hint).to.include('muster packer:run web')
  })

  it('pending operations after an interrupted update point to --clear-pending', () => {
    const stderr = 'error: the current deployment has 1 resource(s) with pending operations:\n  * urn:pulumi:web::muster::command:local:Command::packer-build, interrupted while creating'
    const error = translatePulumiError(new CommandError(commandResult(stderr) as never), 'web') as UserError
    expect(error.message).to.include('interrupted')
    expect(error.hint).to.include('muster up web --clear-pending')
  })

  it('leaves other errors alone', () => {
    const bug = new TypeError('x')
    expect(translatePulumiError(bug, 'web')).to.equal(bug)
  })
})

describe('mapBounded', () => {
  it('never runs more than the limit at once and keeps input order', async () => {
    let running = 0
    let peak = 0
    const out = await mapBounded([5, 1, 4, 2, 3], 2, async (n) => {
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setTimeout(r, n * 3))
      running--
      return n * 10
    })
    expect(out).to.deep.equal([50, 10, 40, 20, 30])
    expect(peak).to.equal(2)
  })

  it('finishes the others, then throws the first error', async () => {
    const done: number[] = []
    let caught: unknown
    try {
      await mapBounded([1, 2, 3], 3, async (n) => {
        if (n === 2) throw new Error('two')
        done.push(n)
      })
    } catch (error) {
      caught = error
    }
    expect((caught as Error).message).to.equal('two')
    expect(done.sort()).to.deep.equal([1, 3])
  })
})
