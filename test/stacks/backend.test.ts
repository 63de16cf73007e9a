import {expect} from 'chai'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {chooseBackend, newStackRefusal, PASSPHRASE_FILE} from '../../src/stacks/backend.js'
import {makeTempDir, removeDir} from '../support/cli.js'

describe('state backend choice', () => {
  let root: string
  let home: string
  beforeEach(() => {
    root = makeTempDir()
    home = makeTempDir()
  })
  afterEach(() => {
    removeDir(root)
    removeDir(home)
  })

  it('PULUMI_BACKEND_URL wins over everything', () => {
    writeFileSync(join(root, 'Pulumi.yaml'), 'name: x\nruntime: nodejs\nbackend:\n  url: s3://from-project\n')
    const backend = chooseBackend(root, {PULUMI_BACKEND_URL: 's3://from-env', PULUMI_HOME: home})
    expect(backend).to.include({url: 's3://from-env', source: 'env'})
    expect(existsSync(join(root, '.muster'))).to.equal(false)
  })

  it('then Pulumi.yaml backend.url', () => {
    writeFileSync(join(root, 'Pulumi.yaml'), 'name: x\nruntime: nodejs\nbackend:\n  url: s3://from-project\n')
    expect(chooseBackend(root, {PULUMI_HOME: home})).to.include({url: 's3://from-project', source: 'project'})
  })

  it('then the user\'s pulumi login', () => {
    writeFileSync(join(home, 'credentials.json'), JSON.stringify({current: 'https://api.pulumi.com', accessTokens: {}}))
    const backend = chooseBackend(root, {PULUMI_HOME: home})
    expect(backend).to.include({url: undefined, source: 'login'})
    expect(backend.env).to.deep.equal({})
  })

  it('else an embedded file backend with a private generated passphrase, git-ignored, created once', () => {
    const first = chooseBackend(root, {PULUMI_HOME: home})
    expect(first.source).to.equal('embedded')
    expect(first.created).to.equal(true)
    expect(first.url).to.equal(`file://${join(root, '.muster', 'state')}`)
    expect(first.env.PULUMI_BACKEND_URL).to.equal(first.url)
    expect(first.env.PULUMI_CONFIG_PASSPHRASE_FILE).to.equal(join(root, PASSPHRASE_FILE))
    const passphrase = readFileSync(join(root, PASSPHRASE_FILE), 'utf8')
    expect(passphrase.trim()).to.have.length.greaterThan(30)
    expect(statSync(join(root, PASSPHRASE_FILE)).mode & 0o777).to.equal(0o600)
    expect(readFileSync(join(root, '.muster', '.gitignore'), 'utf8')).to.equal('*\n')
    const second = chooseBackend(root, {PULUMI_HOME: home})
    expect(second.created).to.equal(false)
    expect(readFileSync(join(root, PASSPHRASE_FILE), 'utf8')).to.equal(passphrase)
  })

  it('a passphrase the user set is not overridden by the generated file', () => {
    mkdirSync(join(root, '.muster'))
    const backend = chooseBackend(root, {PULUMI_HOME: home, PULUMI_CONFIG_PASSPHRASE: 'mine'})
    expect(backend.env).not.to.have.property('PULUMI_CONFIG_PASSPHRASE_FILE')
  })

  it('secrets: the embedded backend uses its passphrase file; Pulumi Cloud needs no passphrase; S3 needs one or a provider', () => {
    expect(chooseBackend(root, {PULUMI_HOME: home}).secrets).to.include({provider: 'passphrase', needsPassphrase: true, passphraseSet: true})
    writeFileSync(join(home, 'credentials.json'), JSON.stringify({current: 'https://api.pulumi.com', accessTokens: {}}))
    expect(chooseBackend(root, {PULUMI_HOME: home}).secrets).to.include({provider: undefined, needsPassphrase: false})
    const s3 = chooseBackend(root, {PULUMI_HOME: home, PULUMI_BACKEND_URL: 's3://state'})
    expect(s3.secrets).to.include({provider: undefined, needsPassphrase: true, passphraseSet: false})
    expect(newStackRefusal(s3, 'web')?.message).to.include('cannot create the stack of web on s3://state (PULUMI_BACKEND_URL)')
    expect(newStackRefusal(chooseBackend(root, {PULUMI_HOME: home, PULUMI_BACKEND_URL: 's3://state', PULUMI_CONFIG_PASSPHRASE_FILE: '/x'}), 'web')).to.equal(undefined)
  })

  it('secrets: MUSTER_SECRETS_PROVIDER wins over Pulumi.yaml muster.secretsProvider; a bad value names where it came from', () => {
    writeFileSync(join(root, 'Pulumi.yaml'), 'name: x\nruntime: nodejs\nmuster:\n  secretsProvider: awskms://alias/team?region=eu-west-1\n')
    const fromProject = chooseBackend(root, {PULUMI_HOME: home, PULUMI_BACKEND_URL: 's3://state'})
    expect(fromProject.secrets).to.include({provider: 'awskms://alias/team?region=eu-west-1', source: 'Pulumi.yaml muster.secretsProvider', needsPassphrase: false})
    expect(newStackRefusal(fromProject, 'web')).to.equal(undefined)
    const fromEnv = chooseBackend(root, {PULUMI_HOME: home, PULUMI_BACKEND_URL: 's3://state', MUSTER_SECRETS_PROVIDER: 'passphrase'})
    expect(fromEnv.secrets).to.include({provider: 'passphrase', source: 'MUSTER_SECRETS_PROVIDER', needsPassphrase: true})
    expect(() => chooseBackend(root, {PULUMI_HOME: home, MUSTER_SECRETS_PROVIDER: 'kms'})).to.throw('MUSTER_SECRETS_PROVIDER is "kms"')
    writeFileSync(join(root, 'Pulumi.yaml'), 'name: x\nruntime: nodejs\nmuster:\n  secretsProvider: 42\n')
    expect(() => chooseBackend(root, {PULUMI_HOME: home})).to.throw('muster.secretsProvider is "42"')
  })
})
