import {expect} from 'chai'

import {AGENT_BUNDLE, AGENT_INSTALL_STEPS, AGENT_SHA256_VAR, AGENT_UNIT, buildPackerTemplate, CONVERGE_SCRIPT, packerManifestPath} from '../../src/artifacts/packer.js'
import {SUDOERS_LINE} from '../../src/artifacts/node-agent.js'
import {execFileSync} from 'node:child_process'
import {TAG_COOKBOOKS_HASH, TAG_GROUP, TAG_PROJECT, TAG_TEMPLATE_HASH} from '../../src/lib/tags.js'
import {planArtifacts} from '../../src/artifacts/generate.js'
import {renderRole} from '../../src/artifacts/role.js'
import type {Group, NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'

function nodesOf(value: unknown): NodesFile {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'))
  return result.nodes
}

const base = {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-0123abcd', run_list: ['recipe[base]']}

function group(nodes: NodesFile, name: string): Group {
  const g = nodes.groups.get(name)
  if (!g) throw new Error(`no ${name}`)
  return g
}

type Source = Record<string, unknown>
function sourceOf(template: Record<string, unknown>): Source {
  return ((template.source as Record<string, Record<string, Source>>)['amazon-ebs'] as Record<string, Source>).image as Source
}
function buildOf(template: Record<string, unknown>): Record<string, unknown> {
  return (template.build as Array<Record<string, unknown>>)[0] as Record<string, unknown>
}

describe('packer template', () => {
  const opts = (g: Group) => ({flavor: 'current' as const, provisionScript: '#!/bin/sh\n', roleText: renderRole(g), project: 'alpha'})

  it('has an amazon-ebs source with the group in ami_name and tags, and a manifest post-processor', () => {
    const g = group(nodesOf({__base__: base, web: {description: 'Web', tags: {team: 'core'}}}), 'web')
    const {template, hash} = buildPackerTemplate(g, opts(g))
    const source = sourceOf(template)
    expect(source.region).to.equal('us-east-1')
    expect(source.source_ami).to.equal('ami-0123abcd')
    expect(source.instance_type).to.equal('m5.large')
    expect(source.ssh_username).to.equal('ubuntu')
    expect(source.ami_name).to.match(/^web \$\{local\.timestamp\}$/)
    expect(source.tags).to.deep.equal({team: 'core', Name: 'web', [TAG_GROUP]: 'web', [TAG_PROJECT]: 'alpha', [TAG_TEMPLATE_HASH]: hash, [TAG_COOKBOOKS_HASH]: '${var.cookbooks_hash}'})
    expect(source.run_tags).to.deep.equal({Name: 'muster-bake-web', [TAG_GROUP]: 'web', [TAG_PROJECT]: 'alpha'})
    // The bake sets the cookbooks hash with -var; the committed template does not change with the cookbooks.
    expect(template.variable).to.deep.include({cookbooks_hash: {type: 'string', default: '', description: "The hash of the cookbooks the group's run list uses; muster's bake sets it."}})
    expect(hash).to.match(/^[0-9a-f]{16}$/)
    const build = buildOf(template)
    expect(build.sources).to.deep.equal(['source.amazon-ebs.image'])
    expect(build['post-processor']).to.deep.equal([{manifest: {output: packerManifestPath('web'), strip_path: true, custom_data: {group: 'web', template_hash: hash}}}])
    expect(template.packer).to.have.nested.property('required_plugins.amazon.source', 'github.com/hashicorp/amazon')
    expect(source.metadata_options).to.deep.include({http_tokens: 'required'})
  })

  it('never carries credentials, even when the environment has them', () => {
    const g = group(nodesOf({__base__: base, web: {}}), 'web')
    const text = buildPackerTemplate(g, opts(g)).text
    expect(text).not.to.match(/access_key|secret_key|token"|AKIA/i)
  })

  it('passes the group\'s packer dict (inherited at level 1) to the source block', () => {
    const nodes = nodesOf({__base__: {...base, packer: {vpc_id: 'vpc-1', subnet_id: 'subnet-1'}}, web: {packer: {subnet_id: 'subnet-2', iam_instance_profile: 'baker'}}})
    const g = group(nodes, 'web')
    const source = sourceOf(buildPackerTemplate(g, opts(g)).template)
    expect(source).to.include({vpc_id: 'vpc-1', subnet_id: 'subnet-2', iam_instance_profile: 'baker'})
  })

  it('provisions with chef-solo through the templates/ script, and not at all without a communicator', () => {
    const nodes = nodesOf({__base__: base, web: {}, boot: {packer: {communicator: 'none'}}})
    const web = group(nodes, 'web')
    const provisioners = buildOf(buildPackerTemplate(web, opts(web)).template).provisioner as Array<Record<string, Record<string, unknown>>>
    expect(provisioners.map((p) => Object.keys(p)[0])).to.deep.equal(['shell', 'file', 'file', 'shell', 'file', 'file', 'file', 'shell'])
    expect(provisioners[1]?.file?.source).to.equal('roles/web.json')
    expect(provisioners[3]?.shell?.script).to.equal('templates/packer/provision.sh')
    expect(provisioners[3]?.shell?.environment_vars).to.include('MUSTER_ROLE=role-web')
    const boot = group(nodes, 'boot')
    expect(buildOf(buildPackerTemplate(boot, opts(boot)).template)).not.to.have.property('provisioner')
  })

  it('builds from the newest base image with from_base', () => {
    const g = group(nodesOf({__base__: base, web: {from_base: true}}), 'web')
    const source = sourceOf(buildPackerTemplate(g, opts(g)).template)
    expect(source).not.to.have.property('source_ami')
    // The project's own base only: another project's __base__ in the account is not a source.
    expect(source.source_ami_filter).to.deep.equal({filters: {[`tag:${TAG_GROUP}`]: '__base__', [`tag:${TAG_PROJECT}`]: 'alpha', state: 'available'}, owners: ['self'], most_recent: true})
  })

  it('the project is part of the template (and its hash), escaped like any text', () => {
    const g = group(nodesOf({__base__: base, web: {from_base: true}}), 'web')
    const a = buildPackerTemplate(g, opts(g))
    const b = buildPackerTemplate(g, {...opts(g), project: 'b${x}'})
    expect(a.hash).to.not.equal(b.hash)
    expect(sourceOf(b.template).tags).to.deep.include({[TAG_PROJECT]: 'b$${x}'})
    expect((sourceOf(b.template).source_ami_filter as {filters: Record<string, string>}).filters[`tag:${TAG_PROJECT}`]).to.equal('b$${x}')
  })

  it('the legacy flavor (Packer 1.6) drops required_plugins and IMDSv2 options, nothing else', () => {
    const g = group(nodesOf({__base__: base, web: {}}), 'web')
    const current = buildPackerTemplate(g, opts(g)).template
    const legacy = buildPackerTemplate(g, {...opts(g), flavor: 'legacy'}).template
    expect(legacy).not.to.have.property('packer')
    const legacySource = sourceOf(legacy)
    expect(legacySource).not.to.have.property('metadata_options')
    expect(legacySource).not.to.have.property('imds_support')
    const {metadata_options: _m, imds_support: _i, tags: _t, ...rest} = sourceOf(current)
    const {tags: _lt, ...legacyRest} = legacySource
    expect(legacyRest).to.deep.equal(rest)
  })

  it('the template hash changes with the role, the provisioning script and the template, and only then', () => {
    const nodes = nodesOf({__base__: base, web: {}, web2: {instance_type: 'm5.xlarge'}})
    const g = group(nodes, 'web')
    const h = (o: Partial<ReturnType<typeof opts>>, grp: Group = g) => buildPackerTemplate(grp, {...opts(grp), ...o}).hash
    expect(h({})).to.equal(h({}))
    expect(h({provisionScript: '#!/bin/sh\necho changed\n'})).not.to.equal(h({}))
    expect(h({roleText: '{}'})).not.to.equal(h({}))
    expect(h({}, group(nodes, 'web2'))).not.to.equal(h({}))
  })

  it('plans no template for packer: false groups and the base image only when a group builds from it', () => {
    const plan = (value: unknown) =>
      planArtifacts(nodesOf(value), {kinds: {packer: 'update'}, provisionScript: '#!/bin/sh\n', agentUnit: '', convergeScript: '', project: 'alpha'})
        .map((a) => a.path)
        .filter((p) => p.startsWith('packer/'))
    expect(plan({__base__: base, web: {}, boot: {packer: false}})).to.deep.equal(['packer/web.pkr.json'])
    expect(plan({__base__: base, web: {from_base: true}})).to.deep.equal(['packer/__base__.pkr.json', 'packer/web.pkr.json'])
  })
  it('escapes ${ and %{ in every string from the nodes file (description, ssh_username, tags, packer options), and only there', () => {
    const g = group(
      nodesOf({
        __base__: base,
        web: {
          description: 'd ${file("/etc/hostname")} %{ if true }',
          ssh_username: 'u${x}',
          tags: {'k${a}': 'v%{b}', plain: 'a $ b % c {d}'},
          packer: {subnet_id: 's${env}', subnet_filter: {filters: {'x${y}': '%{z}'}}, security_group_ids: ['%{w}']},
        },
      }),
      'web',
    )
    const source = sourceOf(buildPackerTemplate(g, opts(g)).template)
    expect(source.ami_description).to.equal('d $${file("/etc/hostname")} %%{ if true }')
    expect(source.ssh_username).to.equal('u$${x}')
    expect(source.tags).to.deep.include({'k$${a}': 'v%%{b}', plain: 'a $ b % c {d}'})
    expect(source.subnet_id).to.equal('s$${env}')
    expect(source.subnet_filter).to.deep.equal({filters: {'x$${y}': '%%{z}'}})
    expect(source.security_group_ids).to.deep.equal(['%%{w}'])
    // muster's own expression stays live.
    expect(source.ami_name).to.equal('web ${local.timestamp}')
  })

  describe('installing the agent', () => {
    const agentOpts = (g: Group) => ({...opts(g), agentUnit: '[Unit]\n', convergeScript: '#!/bin/sh\nexec chef-solo\n'})
    const provisionersOf = (template: Record<string, unknown>) => (buildOf(template).provisioner ?? []) as Array<Record<string, Record<string, unknown>>>

    it('uploads the bundle, the unit and the converge command, then installs them as root, without enabling the unit', () => {
      const g = group(nodesOf({__base__: base, web: {}}), 'web')
      const {template, text} = buildPackerTemplate(g, agentOpts(g))
      const steps = provisionersOf(template)
      const files = steps.filter((p) => p.file).map((p) => [p.file?.source, p.file?.destination])
      expect(files).to.deep.equal([
        ['roles/web.json', '/tmp/muster/roles/role-web.json'],
        ['cookbooks', '/tmp/muster'],
        [AGENT_BUNDLE, '/tmp/muster/agent/muster-agent.mjs'],
        [AGENT_UNIT, '/tmp/muster/agent/muster-agent.service'],
        [CONVERGE_SCRIPT, '/tmp/muster/agent/muster-converge.sh'],
      ])
      expect(AGENT_BUNDLE).to.equal('.muster/agent/muster-agent.mjs')
      // The install step is last, after the converge, run through sudo with the sha256 from the variable.
      const install = steps.at(-1)?.shell as {inline: string[]; environment_vars: string[]; execute_command: string}
      expect(install.inline).to.deep.equal([...AGENT_INSTALL_STEPS])
      expect(install.environment_vars).to.deep.equal(['MUSTER_AGENT_SHA256=${var.agent_sha256}'])
      expect(install.execute_command).to.match(/sudo -E sh -c/)
      expect((template.variable as Record<string, {default: string}>)[AGENT_SHA256_VAR]?.default).to.equal('')
      const script = install.inline.join('\n')
      expect(script).to.include('useradd --system --user-group --home-dir /var/lib/muster --no-create-home --shell /usr/sbin/nologin muster')
      expect(script).to.include('install -d -o muster -g muster -m 0700 /var/lib/muster')
      expect(script).to.include('install -o root -g root -m 0755 $A/muster-converge.sh /usr/local/sbin/muster-converge')
      expect(script).to.include('install -o root -g root -m 0644 $A/muster-agent.service /etc/systemd/system/muster-agent.service')
      expect(script).to.include('install -o root -g root -m 0644 $A/muster-agent.mjs /opt/muster/muster-agent.mjs')
      expect(script).to.include(`printf '%s\\n' '${SUDOERS_LINE}' >$A/sudoers`)
      expect(SUDOERS_LINE).to.equal('muster ALL=(root) NOPASSWD: /usr/local/sbin/muster-converge')
      expect(script).to.include('visudo -cf $A/sudoers')
      expect(script).to.include('install -o root -g root -m 0440 $A/sudoers /etc/sudoers.d/muster')
      expect(script).to.include('systemctl daemon-reload')
      expect(script).not.to.match(/systemctl (enable|start)/)
      // Packer would evaluate ${…} and %{…} in the inline lines; the only live expression is the variable.
      expect(script).not.to.match(/[$%]\{/)
      execFileSync('sh', ['-n', '-c', script])
      expect(text).not.to.match(/AKIA|aws_secret|PRIVATE KEY|password|secret_key|access_key/i)
    })

    it('has no agent steps when the bake has no communicator', () => {
      const g = group(nodesOf({__base__: base, web: {packer: {communicator: 'none'}}}), 'web')
      const {template} = buildPackerTemplate(g, agentOpts(g))
      expect(buildOf(template).provisioner).to.equal(undefined)
      expect(template.variable).not.to.have.property(AGENT_SHA256_VAR)
    })

    it('the template hash changes with the unit and the converge command (not with the bundle: a variable)', () => {
      const g = group(nodesOf({__base__: base, web: {}}), 'web')
      const h = (o: Record<string, string>) => buildPackerTemplate(g, {...agentOpts(g), ...o}).hash
      expect(h({})).to.equal(h({}))
      expect(h({agentUnit: '[Unit]\nDescription=x\n'})).not.to.equal(h({}))
      expect(h({convergeScript: '#!/bin/sh\n'})).not.to.equal(h({}))
    })

    it('plans the unit and the converge command as the project\'s files, kept when present', () => {
      const artifacts = planArtifacts(nodesOf({__base__: base, web: {}}), {kinds: {packer: 'update'}, provisionScript: 'p', agentUnit: 'u', convergeScript: 'c', project: 'alpha'})
      expect(artifacts.filter((a) => a.path.startsWith('templates/')).map((a) => [a.path, a.content, a.policy])).to.deep.equal([
        ['templates/packer/provision.sh', 'p', 'ensure'],
        [AGENT_UNIT, 'u', 'ensure'],
        [CONVERGE_SCRIPT, 'c', 'ensure'],
      ])
    })
  })
})
