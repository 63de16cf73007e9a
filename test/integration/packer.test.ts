import {DeregisterImageCommand, DescribeImagesCommand, DescribeInstancesCommand, type EC2Client} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {installAgentBundle, readAgentBundle} from '../../src/artifacts/agent-bundle.js'
import {readBakeTexts} from '../../src/artifacts/generate.js'
import {AGENT_BUNDLE, AGENT_SHA256_VAR, AGENT_UNIT, buildPackerTemplate, CONVERGE_SCRIPT, packerManifestPath, PROVISION_SCRIPT} from '../../src/artifacts/packer.js'
import {renderRole} from '../../src/artifacts/role.js'
import {loadNodes} from '../../src/nodes/load.js'
import {type Group, requireGroup} from '../../src/nodes/model.js'
import {requireTool} from '../support/integration.js'
import {DEFAULT_SOURCE_IMAGE, motoEc2, type MotoServer, startMoto} from '../support/moto.js'
import {motoSourceOptions, packerSandbox, type PackerSandbox, runPacker} from '../support/packer.js'
import {makeTempDir, removeDir} from '../support/process.js'

/**
 * A group's template as muster generates it (buildPackerTemplate), from a group resolved by
 * muster's own nodes loader; its packer options point the source at moto (communicator none, so
 * the template has no provisioners). `extra` adds source options the way a nodes file would.
 */
function template(moto: MotoServer, name: string, extra: Record<string, unknown> = {}, own: Record<string, unknown> = {}): {text: string; hash: string} {
  const group = testGroup(name, {...motoSourceOptions(moto), ...extra}, own)
  return buildPackerTemplate(group, {flavor: 'current', provisionScript: '', roleText: renderRole(group), project: 'it'})
}

function testGroup(name: string, packer: Record<string, unknown>, own: Record<string, unknown> = {}): Group {
  const base = {region: 'us-east-1', instance_type: 't3.micro', source_ami: DEFAULT_SOURCE_IMAGE.id, ssh_username: 'ubuntu', run_list: ['recipe[base]']}
  const dir = makeTempDir('muster-packer-nodes-')
  try {
    writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: base, [name]: {description: `${name} test image`, packer, ...own}}))
    return requireGroup(loadNodes({cwd: dir}), name)
  } finally {
    removeDir(dir)
  }
}

const repoRootDir = join(import.meta.dirname, '..', '..')

interface Manifest {
  builds: {name: string; builder_type: string; artifact_id: string; custom_data?: Record<string, string>}[]
  last_run_uuid: string
}

describe('packer (validate, build against moto)', function () {
  this.timeout(240_000)
  let moto: MotoServer
  let ec2: EC2Client
  let sandbox: PackerSandbox

  before(async function () {
    requireTool(this, 'packer', 'scripts/ci/install-packer.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    moto = await startMoto()
    ec2 = motoEc2(moto)
    sandbox = packerSandbox(moto)
  })

  after(async function () {
    ec2?.destroy()
    sandbox?.cleanup()
    await moto?.stop()
  })

  it('has the amazon plugin installed for offline use', async function () {
    const installed = await runPacker(['plugins', 'installed'], {cwd: sandbox.dir, env: sandbox.env})
    expect(installed.code, installed.stderr).to.equal(0)
    expect(installed.stdout).to.match(/github\.com\/hashicorp\/amazon\/packer-plugin-amazon_v\d+\.\d+\.\d+_x5\.\d_linux_amd64/)
  })

  it('validates an HCL2 JSON template with required_plugins, without packer init', async function () {
    const path = join(sandbox.dir, 'web.pkr.json')
    writeFileSync(path, template(moto, 'web').text)
    const result = await runPacker(['validate', path], {cwd: sandbox.dir, env: sandbox.env})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    expect(result.stdout).to.match(/The configuration is valid/)
  })

  it('validates the template that installs the agent, with the project\'s files in place; without the bundle it is refused', async function () {
    // A group with a communicator: the bake converges and installs the agent (file and shell provisioners).
    const project = join(sandbox.dir, 'agent-project')
    mkdirSync(join(project, 'roles'), {recursive: true})
    mkdirSync(join(project, 'cookbooks', 'web'), {recursive: true})
    const texts = readBakeTexts(repoRootDir)
    const group = testGroup('agentweb', {...motoSourceOptions(moto), communicator: 'ssh'})
    const roleText = renderRole(group)
    const {text} = buildPackerTemplate(group, {flavor: 'current', ...texts, roleText, project: 'it'})
    writeFileSync(join(project, 'roles', 'agentweb.json'), roleText)
    writeFileSync(join(project, 'cookbooks', 'web', 'metadata.rb'), "name 'web'\n")
    for (const [path, content] of [[PROVISION_SCRIPT, texts.provisionScript], [AGENT_UNIT, texts.agentUnit], [CONVERGE_SCRIPT, texts.convergeScript]] as const) {
      mkdirSync(join(project, path, '..'), {recursive: true})
      writeFileSync(join(project, path), content)
    }
    // The bake's own copy of muster's bundle (dist/muster-agent.mjs, from npm run build).
    const bundle = readAgentBundle()
    installAgentBundle(project, bundle)
    expect(readFileSync(join(project, AGENT_BUNDLE))).to.deep.equal(readFileSync(bundle.source))
    writeFileSync(join(project, 'agentweb.pkr.json'), text)
    const args = ['validate', '-var', `${AGENT_SHA256_VAR}=${bundle.sha256}`, 'agentweb.pkr.json']
    const ok = await runPacker(args, {cwd: project, env: sandbox.env})
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0)
    expect(ok.stdout).to.match(/The configuration is valid/)
    rmSync(join(project, AGENT_BUNDLE))
    const missing = await runPacker(args, {cwd: project, env: sandbox.env})
    expect(missing.code).to.not.equal(0)
    expect(missing.stdout + missing.stderr).to.include('muster-agent.mjs')
  })

  it('needs the installed plugin: with an empty plugin path the same template is refused', async function () {
    const path = join(sandbox.dir, 'noplugin.pkr.json')
    writeFileSync(path, template(moto, 'web').text)
    const emptyPluginDir = join(sandbox.dir, 'no-plugins')
    mkdirSync(emptyPluginDir)
    const result = await runPacker(['validate', path], {cwd: sandbox.dir, env: {...sandbox.env, PACKER_PLUGIN_PATH: emptyPluginDir}})
    expect(result.code).to.not.equal(0)
    expect(result.stdout + result.stderr).to.match(/packer init/)
  })

  it('fails validation of a template with an unknown amazon-ebs option', async function () {
    const path = join(sandbox.dir, 'broken.pkr.json')
    // muster refuses options outside its allowlist itself; Packer is the second line: add one by hand.
    const broken = JSON.parse(template(moto, 'broken').text) as {source: {'amazon-ebs': {image: Record<string, unknown>}}}
    broken.source['amazon-ebs'].image.no_such_option = true
    writeFileSync(path, JSON.stringify(broken))
    expect(() => template(moto, 'broken', {no_such_option: true})).to.throw(/packer option "no_such_option" is not one muster lets a group set/)
    const result = await runPacker(['validate', path], {cwd: sandbox.dir, env: sandbox.env})
    expect(result.code).to.not.equal(0)
    expect(result.stdout + result.stderr).to.match(/no_such_option/)
  })

  // Text a nodes file may hold that HCL would evaluate: a function call, a reference and directives.
  const hostile = {
    description: '${file("/nonexistent/muster-secret")} and %{ if true }directive%{ endif }',
    tags: {probe: '${file("/etc/hostname")}', ref: '${local.timestamp}', dir: '%{ for x in ["a"] }${x}%{ endfor }', escaped: '$${kept}'},
  }

  it('keeps ${…} and %{…} from the nodes file literal: validate does not evaluate them', async function () {
    const path = join(sandbox.dir, 'hostile.pkr.json')
    writeFileSync(path, template(moto, 'hostile', {}, hostile).text)
    const result = await runPacker(['validate', path], {cwd: sandbox.dir, env: sandbox.env})
    // Unescaped, file() of a missing file fails validation; escaped, the template is valid.
    expect(result.code, result.stdout + result.stderr).to.equal(0)
  })

  it('bakes the nodes file\'s ${…} and %{…} text into the AMI\'s tags verbatim', async function () {
    const path = join(sandbox.dir, 'literal.pkr.json')
    writeFileSync(path, template(moto, 'literal', {}, hostile).text)
    mkdirSync(join(sandbox.dir, '.muster', 'manifests'), {recursive: true})
    const result = await runPacker(['build', '-color=false', path], {cwd: sandbox.dir, env: sandbox.env})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    const {Images} = await ec2.send(new DescribeImagesCommand({Filters: [{Name: 'tag:muster:group', Values: ['literal']}]}))
    expect(Images).to.have.length(1)
    expect(Images?.[0]?.Tags).to.deep.include.members(Object.entries(hostile.tags).map(([Key, Value]) => ({Key, Value})))
    await ec2.send(new DeregisterImageCommand({ImageId: Images?.[0]?.ImageId ?? ''}))
  })

  // Packer renders tags (keys too) and other strings as Go templates: {{ pwd }}, {{ env `HOME` }},
  // {{ .SourceAMIName }}, {{ vault … }} run at bake time. muster refuses "{{" in every string that
  // reaches a template; braces that are no template action stay literal.
  it('refuses {{ … }} (a Packer Go template) in tag values, tag keys, the description and packer options', function () {
    for (const own of [
      {tags: {where: '{{ pwd }}'}},
      {tags: {'{{uuid}}': 'x'}},
      {description: '{{ .SourceAMIName }}'},
      {packer: {user_data: '{{ env `HOME` }}'}},
    ]) {
      expect(() => testGroup('gotmpl', {}, own), JSON.stringify(own)).to.throw(/contains "\{\{", which Packer would evaluate as a Go template at bake time/)
    }
  })

  it('bakes braces that are no Go template into the AMI\'s tags verbatim; the same tag with {{ pwd }} would be evaluated (why muster refuses it)', async function () {
    const braces = {a: '{ {pwd}}', b: '}} {x} {', '{k}': 'v'}
    const path = join(sandbox.dir, 'braces.pkr.json')
    // The evaluated tag is written into the template text directly: muster itself never writes it.
    const text = template(moto, 'braces', {}, {tags: {...braces, evaluated: 'PLACEHOLDER'}}).text.replace('"PLACEHOLDER"', '"{{ pwd }}"')
    writeFileSync(path, text)
    mkdirSync(join(sandbox.dir, '.muster', 'manifests'), {recursive: true})
    const result = await runPacker(['build', '-color=false', path], {cwd: sandbox.dir, env: sandbox.env})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    const {Images} = await ec2.send(new DescribeImagesCommand({Filters: [{Name: 'tag:muster:group', Values: ['braces']}]}))
    expect(Images).to.have.length(1)
    const tags = Images?.[0]?.Tags ?? []
    expect(tags).to.deep.include.members(Object.entries(braces).map(([Key, Value]) => ({Key, Value})))
    expect(tags.find((t) => t.Key === 'evaluated')?.Value).to.not.equal('{{ pwd }}')
    await ec2.send(new DeregisterImageCommand({ImageId: Images?.[0]?.ImageId ?? ''}))
  })

  it('builds an AMI in moto and writes the manifest with its id', async function () {
    const path = join(sandbox.dir, 'app.pkr.json')
    const {text, hash} = template(moto, 'app')
    writeFileSync(path, text)
    // The manifest post-processor does not create its output's directory; the build fails without it.
    mkdirSync(join(sandbox.dir, '.muster', 'manifests'), {recursive: true})
    const result = await runPacker(['build', '-color=false', path], {cwd: sandbox.dir, env: sandbox.env})
    expect(result.code, result.stdout + result.stderr).to.equal(0)

    const manifest = JSON.parse(readFileSync(join(sandbox.dir, packerManifestPath('app')), 'utf8')) as Manifest
    expect(manifest.builds).to.have.length(1)
    const build = manifest.builds[0]
    expect(build?.builder_type).to.equal('amazon-ebs')
    expect(build?.custom_data).to.deep.equal({group: 'app', template_hash: hash})
    // artifact_id is "region:ami-id" (comma-separated when copied to several regions).
    const [region, amiId] = (build?.artifact_id ?? '').split(':')
    expect(region).to.equal(moto.region)
    expect(amiId).to.match(/^ami-[0-9a-f]+$/)
    expect(result.stdout).to.include(amiId)

    const {Images} = await ec2.send(new DescribeImagesCommand({Owners: ['self']}))
    expect((Images ?? []).map((i) => i.ImageId)).to.deep.equal([amiId])
    const image = Images?.[0]
    expect(image?.Name).to.match(/^app \d{14}$/)
    // No Description check: the plugin sets it with ModifyImageAttribute, which moto ignores for it.
    expect(image?.Tags).to.deep.include.members([
      {Key: 'muster:group', Value: 'app'},
      {Key: 'muster:template-hash', Value: hash},
    ])
    const byTag = await ec2.send(new DescribeImagesCommand({Filters: [{Name: 'tag:muster:group', Values: ['app']}]}))
    expect((byTag.Images ?? []).map((i) => i.ImageId)).to.deep.equal([amiId])

    // The bake instance ran with its run_tags and was cleaned up (terminated).
    const {Reservations} = await ec2.send(
      new DescribeInstancesCommand({Filters: [{Name: 'tag:Name', Values: ['muster-bake-app']}]}),
    )
    const instances = (Reservations ?? []).flatMap((r) => r.Instances ?? [])
    expect(instances).to.have.length(1)
    expect(instances[0]?.ImageId).to.equal(DEFAULT_SOURCE_IMAGE.id)
    expect(instances[0]?.State?.Name).to.be.oneOf(['terminated', 'shutting-down'])
  })
})
