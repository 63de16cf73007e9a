import {expect} from 'chai'
import {chmodSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {atomicWrite, atomicWriteSync, targetMode} from '../../src/lib/atomic-write.js'
import {makeTempDir, removeDir} from '../support/cli.js'

describe('atomic write', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTempDir('muster-atomic-')
  })
  afterEach(() => removeDir(dir))

  const mode = (path: string): number => statSync(path).mode & 0o777

  it('writes a new file (and its directory), leaving no temp file', async () => {
    await atomicWrite(join(dir, 'a', 'b.txt'), 'hello')
    atomicWriteSync(join(dir, 'a', 'c.bin'), new Uint8Array([1, 2, 3]))
    expect(readFileSync(join(dir, 'a', 'b.txt'), 'utf8')).to.equal('hello')
    expect([...readFileSync(join(dir, 'a', 'c.bin'))]).to.deep.equal([1, 2, 3])
    expect(readdirSync(join(dir, 'a')).sort()).to.deep.equal(['b.txt', 'c.bin'])
  })

  it('gives a new file the requested mode', async () => {
    await atomicWrite(join(dir, 'secret'), 'x', {mode: 0o600})
    atomicWriteSync(join(dir, 'secret2'), 'x', {mode: 0o600})
    expect(mode(join(dir, 'secret'))).to.equal(0o600)
    expect(mode(join(dir, 'secret2'))).to.equal(0o600)
  })

  it('keeps an existing file\'s mode and never widens it', async () => {
    const file = join(dir, 'kept')
    writeFileSync(file, 'old')
    chmodSync(file, 0o640)
    await atomicWrite(file, 'new')
    expect(mode(file)).to.equal(0o640)
    atomicWriteSync(file, 'newer', {mode: 0o666})
    expect(mode(file)).to.equal(0o640)
    await atomicWrite(file, 'newest', {mode: 0o600})
    expect(mode(file)).to.equal(0o600)
    expect(readFileSync(file, 'utf8')).to.equal('newest')
  })

  it('targetMode narrows, never widens', () => {
    expect(targetMode(undefined, undefined)).to.equal(undefined)
    expect(targetMode(undefined, 0o600)).to.equal(0o600)
    expect(targetMode(0o100644, undefined)).to.equal(0o644)
    expect(targetMode(0o100600, 0o644)).to.equal(0o600)
  })
})
