import {expect} from 'chai'
import {execFileSync, spawnSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {openSshPublicKeyFromPem} from '../../src/aws/keys.js'
import {UserError} from '../../src/errors.js'

// A public key only (made once with ssh-keygen -t rsa -b 1024; -e -m PKCS8): the fallback vector
// when ssh-keygen is missing, and a check that the PEM public key path agrees with OpenSSH.
const VECTOR_PEM = `-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCo62ykJonB6XAz5gzXWUk0y0bk
7cUJQepAAcP6bshJUQp7LUQ4Eh11hd6wFBfuVUD5QKJhhYfYs4hyTbD+VXY7rC63
ewB2oU17i2qwSZPNUTai2HDMOeDvebTLrwXYQbeuPezTIsLUXfnR5j2kAdmzDfiR
4GBb4LQWhDR4voC84wIDAQAB
-----END PUBLIC KEY-----
`
const VECTOR_LINE =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCo62ykJonB6XAz5gzXWUk0y0bk7cUJQepAAcP6bshJUQp7LUQ4Eh11hd6wFBfuVUD5QKJhhYfYs4hyTbD+VXY7rC63ewB2oU17i2qwSZPNUTai2HDMOeDvebTLrwXYQbeuPezTIsLUXfnR5j2kAdmzDfiR4GBb4LQWhDR4voC84w=='

const hasSshKeygen = spawnSync('ssh-keygen', ['-?'], {stdio: 'ignore'}).error === undefined
/** "TYPE BASE64" without the comment ssh-keygen may append. */
const typeAndKey = (line: string): string => line.trim().split(/\s+/).slice(0, 2).join(' ')

describe('openSshPublicKeyFromPem', () => {
  it('turns a PEM public key into the OpenSSH line of a known-good vector', () => {
    expect(openSshPublicKeyFromPem(VECTOR_PEM)).to.equal(VECTOR_LINE)
  })

  it('accepts an OpenSSH public key line and drops its comment', () => {
    expect(openSshPublicKeyFromPem(`${VECTOR_LINE} someone@laptop\n`)).to.equal(VECTOR_LINE)
  })

  it('builds the Ed25519 line from a PEM key (the raw key wrapped in SPKI, compared with its wire form)', () => {
    const {publicKey} = generateKeyPairSync('ed25519')
    const der = publicKey.export({type: 'spki', format: 'der'})
    const raw = der.subarray(der.length - 32)
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), raw])
    expect(openSshPublicKeyFromPem(publicKey.export({type: 'spki', format: 'pem'}).toString())).to.equal(`ssh-ed25519 ${blob.toString('base64')}`)
  })

  it('refuses keys EC2 cannot import, passphrase-protected PEM and garbage, as user errors', () => {
    const ec = generateKeyPairSync('ec', {namedCurve: 'P-256'}).privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
    expect(() => openSshPublicKeyFromPem(ec)).to.throw(UserError, /RSA or Ed25519/)
    const encrypted = generateKeyPairSync('rsa', {modulusLength: 1024}).privateKey.export({type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x'}).toString()
    expect(() => openSshPublicKeyFromPem(encrypted)).to.throw(UserError, /passphrase/)
    expect(() => openSshPublicKeyFromPem('not a key')).to.throw(UserError, /not a PEM or OpenSSH key/)
  })

  describe('round trip against ssh-keygen -y', function () {
    let dir = ''
    before(function () {
      if (!hasSshKeygen) this.skip() // ssh-keygen is not installed; the vector above still covers RSA
      dir = mkdtempSync(join(tmpdir(), 'muster-keys-'))
    })
    after(() => {
      if (dir) rmSync(dir, {recursive: true, force: true})
    })

    const cases: Array<{what: string; args: string[]; passphrase?: string}> = [
      {what: 'RSA, PKCS#1 PEM (what EC2 hands out)', args: ['-t', 'rsa', '-b', '2048', '-m', 'PEM']},
      {what: 'RSA, PKCS#8 PEM', args: ['-t', 'rsa', '-b', '2048', '-m', 'PKCS8']},
      {what: 'RSA, OpenSSH format', args: ['-t', 'rsa', '-b', '2048']},
      {what: 'Ed25519, OpenSSH format', args: ['-t', 'ed25519']},
      {what: 'Ed25519, OpenSSH format with a passphrase (public part is in the clear)', args: ['-t', 'ed25519'], passphrase: 'correct horse'},
    ]
    for (const [i, c] of cases.entries()) {
      it(c.what, () => {
        const file = join(dir, `key${i}`)
        execFileSync('ssh-keygen', [...c.args, '-q', '-N', c.passphrase ?? '', '-C', 'test', '-f', file])
        const expected = execFileSync('ssh-keygen', ['-y', '-P', c.passphrase ?? '', '-f', file], {encoding: 'utf8'})
        expect(openSshPublicKeyFromPem(readFileSync(file, 'utf8'))).to.equal(typeAndKey(expected))
      })
    }

    it('ECDSA in OpenSSH format is refused (EC2 imports RSA and Ed25519 only)', () => {
      const file = join(dir, 'ecdsa')
      execFileSync('ssh-keygen', ['-t', 'ecdsa', '-q', '-N', '', '-f', file])
      expect(() => openSshPublicKeyFromPem(readFileSync(file, 'utf8'))).to.throw(UserError, /ecdsa-sha2-nistp256/)
    })
  })
})
