// A team backend's secrets, on the real engine with moto's S3 as the state backend and moto's KMS
// as the cloud secrets provider: with neither a passphrase nor a provider, a new stack is refused
// with a message naming both ways (and nothing is created); MUSTER_SECRETS_PROVIDER or Pulumi.yaml
// `muster.secretsProvider` makes new stacks use awskms://, after which no passphrase is needed;
// an existing passphrase stack without its passphrase says that, not "could not decrypt".
import {CreateBucketCommand, ListObjectsV2Command, S3Client} from '@aws-sdk/client-s3'
import {expect} from 'chai'
import {appendFileSync, existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {type CliResult, runMuster} from '../support/cli.js'
import type {MotoServer} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

/** A KMS key in moto (the SDK's KMS client is not a dependency: one JSON call does it). */
async function createKmsKey(moto: MotoServer): Promise<string> {
  const response = await fetch(moto.endpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': 'TrentService.CreateKey',
      // moto does not check signatures; it reads the region from the credential scope.
      Authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: '{}',
  })
  expect(response.status).to.equal(200)
  return ((await response.json()) as {KeyMetadata: {KeyId: string}}).KeyMetadata.KeyId
}

describe('secrets on a team backend: S3 and KMS on moto (integration)', function () {
  this.timeout(300_000)
  const bucket = 'muster-team-state'
  let moto: MotoServer
  let project: MusterProject
  let s3: S3Client
  let backendEnv: Record<string, string>
  let keyId: string

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: {}, api: {}, db: {}}))
    s3 = new S3Client({endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}})
    await s3.send(new CreateBucketCommand({Bucket: bucket}))
    keyId = await createKmsKey(moto)
    const query = new URLSearchParams({endpoint: moto.endpoint, region: 'us-east-1', use_path_style: 'true'})
    backendEnv = {...moto.env, PULUMI_BACKEND_URL: `s3://${bucket}?${query}`}
  })

  after(async () => {
    s3?.destroy()
    project?.cleanup()
    await moto?.stop()
  })

  /** muster on the S3 backend; no passphrase unless `extra` sets one. */
  const muster = (args: string[], extra: Record<string, string> = {}): CliResult => runMuster(args, {cwd: project.dir, env: {...project.env, ...backendEnv, ...extra}})
  const stacksInBucket = async (): Promise<string[]> => {
    const listing = await s3.send(new ListObjectsV2Command({Bucket: bucket, Prefix: '.pulumi/stacks/'}))
    return (listing.Contents ?? []).map((o) => o.Key ?? '').filter((k) => k.endsWith('.json')).sort()
  }

  it('without a passphrase or a secrets provider, a new stack is refused naming both, and nothing is created', async () => {
    const result = muster(['preview', 'web'])
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('cannot create the stack of web on s3://muster-team-state')
    expect(result.stderr).to.include('its secrets need a passphrase or a cloud secrets provider, and neither is set')
    expect(result.stderr).to.include('MUSTER_SECRETS_PROVIDER=awskms://')
    expect(result.stderr).to.include('PULUMI_CONFIG_PASSPHRASE')
    expect(result.stderr).not.to.include('could not decrypt')
    expect(await stacksInBucket()).to.deep.equal([])
    expect(existsSync(join(project.dir, 'stacks', 'Pulumi.web.yaml'))).to.equal(false)
  })

  it('MUSTER_SECRETS_PROVIDER=awskms://… creates the stack with the KMS key; later runs need neither', async () => {
    const provider = `awskms://${keyId}?region=us-east-1`
    const created = muster(['preview', 'web'], {MUSTER_SECRETS_PROVIDER: provider})
    expect(created.code, created.stderr).to.equal(0)
    expect(readFileSync(join(project.dir, 'stacks', 'Pulumi.web.yaml'), 'utf8')).to.include(`secretsprovider: ${provider}`)
    expect(await stacksInBucket()).to.deep.equal(['.pulumi/stacks/muster/web.json'])
    // The stack records its provider: no variable and no passphrase needed any more.
    const again = muster(['preview', 'web'])
    expect(again.code, again.stderr).to.equal(0)
  })

  it('Pulumi.yaml muster.secretsProvider does the same for the whole team; a bad value is refused by name', async () => {
    appendFileSync(join(project.dir, 'Pulumi.yaml'), `muster:\n  secretsProvider: awskms://${keyId}?region=us-east-1\n`)
    const created = muster(['preview', 'api'])
    expect(created.code, created.stderr).to.equal(0)
    expect(readFileSync(join(project.dir, 'stacks', 'Pulumi.api.yaml'), 'utf8')).to.include(`secretsprovider: awskms://${keyId}`)
    const bad = muster(['preview', 'db'], {MUSTER_SECRETS_PROVIDER: 'kms:mykey'})
    expect(bad.code).to.equal(1)
    expect(bad.stderr).to.include('MUSTER_SECRETS_PROVIDER is "kms:mykey", which is not a Pulumi secrets provider')
    expect(bad.stderr).to.include('awskms://')
  })

  it('a passphrase stack run without its passphrase says so, not "could not decrypt"', async () => {
    const created = muster(['preview', 'db'], {MUSTER_SECRETS_PROVIDER: 'passphrase', PULUMI_CONFIG_PASSPHRASE: 'team-secret'})
    expect(created.code, created.stderr).to.equal(0)
    expect(readFileSync(join(project.dir, 'stacks', 'Pulumi.db.yaml'), 'utf8')).to.include('encryptionsalt:')
    const without = muster(['preview', 'db', '--json'])
    expect(without.code).to.equal(1)
    const error = (JSON.parse(without.stdout) as {errors: Array<{stack: string; message: string}>}).errors[0]
    expect(error?.stack).to.equal('db')
    expect(error?.message).to.include('the stack of db keeps its secrets with a passphrase, and none is set')
    const wrong = muster(['preview', 'db', '--json'], {PULUMI_CONFIG_PASSPHRASE: 'not-it'})
    expect(wrong.code).to.equal(1)
    expect(wrong.stdout).to.include('the passphrase is not the one it was created with')
    const right = muster(['preview', 'db'], {PULUMI_CONFIG_PASSPHRASE: 'team-secret'})
    expect(right.code, right.stderr).to.equal(0)
  })
})
