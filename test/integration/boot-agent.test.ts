// A group with packer: false boots from an image muster never baked: the verb that launches its
// machines uploads the agent's files to the release bucket (publishBootAgent), and the user data
// fetches them with the real AWS CLI (here from moto's S3), checks their sha256 and runs the
// bake's install steps. Root's tools (useradd, install, visudo, systemctl, sudo) are recording
// stand-ins and the paths live in a temp dir; aws, sha256sum and sh are real.
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {bootAgent, publishBootAgent, readAgentBundle} from '../../src/artifacts/agent-bundle.js'
import {readBakeTexts} from '../../src/artifacts/generate.js'
import {fleetSettings} from '../../src/artifacts/node-agent.js'
import {renderUserData, USER_DATA_TEMPLATE} from '../../src/artifacts/userdata.js'
import type {Group, NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'
import {openReleaseBucket} from '../../src/release/bucket.js'
import {buildContext} from '../../src/stacks/context.js'
import {emptyIntent} from '../../src/stacks/intent.js'
import {requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {makeTempDir, removeDir} from '../support/process.js'
import {createBucket, putObject} from '../support/release.js'

const BUCKET = 'boot-agent-releases'

function nodesOf(value: Record<string, unknown>): NodesFile {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'))
  return result.nodes
}

describe('the agent installed at boot from the release bucket (packer: false)', function () {
  this.timeout(120_000)
  let moto: MotoServer
  let dir: string
  const saved: Record<string, string | undefined> = {}

  before(async function () {
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    moto = await startMoto({sourceImages: []})
    await createBucket(moto, BUCKET)
    // The upload uses the SDK's default credential chain (the operator's, on the CLI): moto's here.
    for (const [key, value] of Object.entries(moto.env)) {
      saved[key] = process.env[key]
      process.env[key] = value
    }
  })
  after(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
    await moto?.stop()
  })
  beforeEach(() => {
    dir = makeTempDir('muster-boot-agent-')
  })
  afterEach(() => removeDir(dir))

  const nodes = nodesOf({
    __base__: {region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-0123abcd', release_bucket: BUCKET, registry: {endpoints: ['http://10.0.0.5:2379']}},
    boot: {packer: false, run_list: ['recipe[web-service::api]']},
    baked: {run_list: ['recipe[web-service::api]']},
  })

  /** Stand-ins for root's tools; `install` copies into dir/root so what got installed can be read. */
  function standIns(): string {
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    const log = join(dir, 'calls.log')
    const tool = (name: string, body: string): void => {
      writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >>'${log}'\n${body}\n`)
      chmodSync(join(bin, name), 0o755)
    }
    tool('chef-solo', 'exit 0')
    tool('id', 'exit 1')
    tool('useradd', 'exit 0')
    tool('visudo', 'exit 0')
    tool('sudo', 'exit 0')
    tool('systemctl', 'exit 0')
    tool('install', `case " $* " in *" -d "*) exit 0;; esac\neval "dest=\\\${$#}"; eval "src=\\\${$(($# - 1))}"\nmkdir -p "${dir}/root$(dirname "$dest")" && cp "$src" "${dir}/root$dest"`)
    return bin
  }

  function boot(text: string): {status: number | null; stderr: string; calls: string} {
    const script = text.replace('MUSTER_DIR=/etc/muster', `MUSTER_DIR=${dir}/etc`).replaceAll('/tmp/muster/agent', `${dir}/upload`)
    expect(spawnSync('sh', ['-n', '-c', script]).status).to.equal(0)
    const bin = standIns()
    const result = spawnSync('sh', ['-c', script], {encoding: 'utf8', env: {...moto.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: dir}, timeout: 90_000})
    const log = join(dir, 'calls.log')
    return {status: result.status, stderr: result.stderr, calls: existsSync(log) ? readFileSync(log, 'utf8') : ''}
  }

  it('uploads the bundle, unit and converge command content-addressed, and the user data fetches, checks and installs them', async function () {
    requireTool(this, 'aws', 'pip install awscli')
    const texts = readBakeTexts(process.cwd())
    const bundle = readAgentBundle()
    const agent = bootAgent(BUCKET, 'shop', bundle, texts)
    expect(agent.files.map((f) => f.key)).to.deep.equal([
      `muster/shop/agent/${bundle.sha256}.mjs`,
      `muster/shop/agent/${agent.files[1]?.sha256}.service`,
      `muster/shop/agent/${agent.files[2]?.sha256}.sh`,
    ])
    const bucket = openReleaseBucket({bucket: BUCKET, env: moto.env})
    expect(await publishBootAgent(bucket, agent)).to.have.length(3)
    // Content-addressed: a second publish uploads nothing.
    expect(await publishBootAgent(bucket, agent)).to.deep.equal([])

    const fleet = {...fleetSettings(nodes, 'shop'), bootAgent: {bucket: BUCKET, files: agent.files.map(({key, sha256, name}) => ({key, sha256, name}))}}
    const text = renderUserData(readFileSync(USER_DATA_TEMPLATE, 'utf8'), nodes.groups.get('boot') as Group, {fleet})
    expect(text).not.to.match(/AKIA|aws_secret|PRIVATE KEY|password/i)
    const {status, stderr, calls} = boot(text)
    expect(status, stderr).to.equal(0)
    expect(readFileSync(join(dir, 'root/opt/muster/muster-agent.mjs'))).to.deep.equal(readFileSync(bundle.source))
    expect(readFileSync(join(dir, 'root/etc/systemd/system/muster-agent.service'), 'utf8')).to.equal(texts.agentUnit)
    expect(readFileSync(join(dir, 'root/usr/local/sbin/muster-converge'), 'utf8')).to.equal(texts.convergeScript)
    expect(readFileSync(join(dir, 'root/etc/sudoers.d/muster'), 'utf8')).to.equal('muster ALL=(root) NOPASSWD: /usr/local/sbin/muster-converge\n')
    expect(calls).to.include('useradd --system --user-group --home-dir /var/lib/muster --no-create-home --shell /usr/sbin/nologin muster')
    expect(calls).to.include('systemctl daemon-reload')
    // Then, as on a baked image, the user data starts it.
    expect(calls).to.include('systemctl enable --now muster-agent.service')
  })

  it('stops the boot, saying so, when an object is not what muster uploaded', async function () {
    requireTool(this, 'aws', 'pip install awscli')
    const agent = bootAgent(BUCKET, 'tampered', readAgentBundle(), {agentUnit: '[Unit]\n', convergeScript: '#!/bin/sh\n'})
    await publishBootAgent(openReleaseBucket({bucket: BUCKET, env: moto.env}), agent)
    await putObject(moto, BUCKET, agent.files[1]?.key ?? '', '[Unit]\nExecStart=/bin/evil\n')
    const fleet = {...fleetSettings(nodes, 'tampered'), bootAgent: {bucket: BUCKET, files: agent.files.map(({key, sha256, name}) => ({key, sha256, name}))}}
    const {status, stderr, calls} = boot(renderUserData(readFileSync(USER_DATA_TEMPLATE, 'utf8'), nodes.groups.get('boot') as Group, {fleet}))
    expect(status).to.equal(1)
    expect(stderr).to.match(/muster: s3:\/\/boot-agent-releases\/muster\/tampered\/agent\/[0-9a-f]{64}\.service is not what muster uploaded \(sha256 mismatch\)/)
    expect(calls).not.to.include('systemctl enable')
    expect(existsSync(join(dir, 'root/etc/systemd/system/muster-agent.service'))).to.equal(false)
  })

  it('says so when the bucket has not got the files, and when the nodes file names no release bucket', async function () {
    requireTool(this, 'aws', 'pip install awscli')
    const agent = bootAgent(BUCKET, 'never-uploaded', readAgentBundle(), {agentUnit: 'u', convergeScript: 'c'})
    const fleet = {...fleetSettings(nodes, 'x'), bootAgent: {bucket: BUCKET, files: agent.files.map(({key, sha256, name}) => ({key, sha256, name}))}}
    const missing = boot(renderUserData(readFileSync(USER_DATA_TEMPLATE, 'utf8'), nodes.groups.get('boot') as Group, {fleet}))
    expect(missing.status).to.equal(1)
    expect(missing.stderr).to.match(/muster: cannot fetch s3:\/\/boot-agent-releases\/muster\/never-uploaded\/agent\/[0-9a-f]{64}\.mjs \(does the instance profile allow s3:GetObject/)
    const template = readFileSync(USER_DATA_TEMPLATE, 'utf8')
    const noBucket = renderUserData(template, nodes.groups.get('boot') as Group, {fleet: fleetSettings(nodes, 'x')})
    expect(noBucket).to.include('the nodes file has no __base__.release_bucket: the agent is not installed')
    // A baked group's image has the agent: nothing is fetched.
    expect(renderUserData(template, nodes.groups.get('baked') as Group, {fleet})).not.to.include('aws s3 cp')
  })

  it('a run that launches packer: false machines carries the files to upload and their places in the user data; a baked group carries none', () => {
    writeFileSync(join(dir, 'Pulumi.yaml'), 'name: shop\nruntime: nodejs\n')
    const fleetIntent = {...emptyIntent(), fleet: true}
    const boot = buildContext(dir, nodes, nodes.groups.get('boot') as Group, fleetIntent)
    expect(boot.bootAgent?.bucket).to.equal(BUCKET)
    expect(boot.bootAgent?.files.map((f) => f.name)).to.deep.equal(['muster-agent.mjs', 'muster-agent.service', 'muster-converge.sh'])
    expect(boot.program.fleet?.bootAgent?.files.map((f) => f.key)).to.deep.equal(boot.bootAgent?.files.map((f) => f.key))
    expect(boot.bootAgent?.files[0]?.key).to.equal(`muster/shop/agent/${readAgentBundle().sha256}.mjs`)
    expect(buildContext(dir, nodes, nodes.groups.get('boot') as Group, emptyIntent()).bootAgent).to.equal(undefined)
    expect(buildContext(dir, nodes, nodes.groups.get('baked') as Group, fleetIntent).bootAgent).to.equal(undefined)
  })
})
