import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {renderDna} from '../../src/artifacts/dna.js'
import {fleetSettings, NODE_PROVISION} from '../../src/artifacts/node-agent.js'
import {renderRole} from '../../src/artifacts/role.js'
import {loadNodes} from '../../src/nodes/load.js'
import {spawnSync} from 'node:child_process'
import {renderTemplate, renderUserData, USER_DATA_LIMIT, USER_DATA_TEMPLATE} from '../../src/artifacts/userdata.js'
import {UserError} from '../../src/errors.js'
import type {Group, NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'

const template = readFileSync(USER_DATA_TEMPLATE, 'utf8')

function groupOf(value: Record<string, unknown>, name: string): Group {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'))
  const nodes: NodesFile = result.nodes
  const group = nodes.groups.get(name)
  if (!group) throw new Error(`no ${name}`)
  return group
}

const base = {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-0123abcd', run_list: ['recipe[base]']}
const bee = groupOf(
  {
    __base__: base,
    '12_04-bee': {
      autoscale: {timeout: 120, node_min: 2, node_max: 2},
      default_attributes: {quote: "it's \"quoted\" $HOME `x`", multi: 'a\nb'},
      run_list: ['recipe[seatgeek-service::api-workers]'],
    },
  },
  '12_04-bee',
)

describe('user data', () => {
  it('fills every placeholder of the bundled template, deterministically', () => {
    const text = renderUserData(template, bee)
    expect(text).to.equal(renderUserData(template, bee))
    expect(text).not.to.match(/\{\{/)
    expect(text.startsWith('#!/bin/sh\n')).to.equal(true)
    expect(text).to.include('MUSTER_DIR=/etc/muster\n')
    expect(text).to.include('"$MUSTER_DIR/roles/role-12_04-bee.json"')
    expect(text).to.include(renderRole(bee).trimEnd())
    expect(text).to.include(renderDna(bee).trimEnd())
    expect(text).to.include('chef-solo --config')
    expect(text).to.include('systemctl enable --now muster-agent.service')
  })

  it('uses the dna id it is given (one-off instances)', () => {
    expect(renderUserData(template, bee, {dnaId: '12_04-bee-worker1'})).to.include('"id": "12_04-bee-worker1"')
  })

  it('is a valid sh script that writes the role and dna byte for byte, runs chef-solo, and skips a missing agent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muster-userdata-'))
    try {
      const bin = join(dir, 'bin')
      mkdirSync(bin)
      // A stand-in chef-solo that records its arguments; systemctl is hidden so the agent step is skipped.
      writeFileSync(join(bin, 'chef-solo'), `#!/bin/sh\necho "$@" >"${dir}/chef-args"\n`)
      chmodSync(join(bin, 'chef-solo'), 0o755)
      const script = renderUserData(template, bee).replace('MUSTER_DIR=/etc/muster', `MUSTER_DIR=${dir}/etc`)
      execFileSync('sh', ['-n', '-c', script])
      execFileSync('sh', ['-c', script], {env: {PATH: `${bin}:/usr/bin:/bin`}})
      expect(readFileSync(join(dir, 'etc/roles/role-12_04-bee.json'), 'utf8')).to.equal(renderRole(bee))
      expect(readFileSync(join(dir, 'etc/dna.json'), 'utf8')).to.equal(renderDna(bee))
      expect(readFileSync(join(dir, 'etc/node.env'), 'utf8')).to.equal('MUSTER_GROUP=12_04-bee\nMUSTER_ROLE=role-12_04-bee\n')
      expect(readFileSync(join(dir, 'chef-args'), 'utf8')).to.equal(`--config ${dir}/etc/solo.rb --json-attributes ${dir}/etc/dna.json --no-color\n`)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('refuses a placeholder it does not know, naming the ones it fills', () => {
    expect(() => renderTemplate('{{group}} {{ grup }}', {group: 'g'})).to.throw(UserError, /\{\{grup\}\}/)
    expect(renderTemplate('a {{ group }} b', {group: 'g'})).to.equal('a g b')
  })

  it('refuses credentials from the nodes file or the template', () => {
    // Fakes assembled at run time, so that secret scanners do not flag this file.
    const fakeKeyId = ['AKIA', 'ABCDEFGHIJKLMNOP'].join('')
    const fakePem = ['-----BEGIN RSA', 'PRIVATE KEY-----'].join(' ')
    const leaky = groupOf({__base__: base, web: {default_attributes: {aws: {key: fakeKeyId}}}}, 'web')
    expect(() => renderUserData(template, leaky)).to.throw(UserError, /access key id/)
    expect(() => renderUserData(`${template}\nexport AWS_SECRET_ACCESS_KEY=x\n`, bee)).to.throw(UserError, /secret key/)
    expect(() => renderUserData(fakePem, bee)).to.throw(UserError, /private key/)
  })

  it('contains no credential-shaped text for the paper example', () => {
    const text = renderUserData(template, bee)
    expect(text).not.to.match(/AKIA|aws_secret|PRIVATE KEY|password/i)
  })

  it('refuses user data over the EC2 limit', () => {
    const big = groupOf({__base__: base, web: {default_attributes: {blob: 'x'.repeat(USER_DATA_LIMIT)}}}, 'web')
    expect(() => renderUserData(template, big)).to.throw(UserError, /at most 16384/)
  })

  describe('the agent\'s files', () => {
    const registry = {endpoints: ['http://10.0.0.5:2379', 'https://etcd.internal:2379'], project: 'shop'}
    const fleet = {
      __base__: {...base, registry, release_bucket: 'my-releases', services: {api: {port: 8080, health_check: '/health'}}, tags: {team: 'core'}},
      web: {autoscale: {timeout: 120, node_min: 1, node_max: 3}, run_list: ['recipe[shop-service::api]'], post_run_list: ['recipe[audit]'], depends_on: ['db'], default_attributes: {a: {b: 1}}, packer: {ssh_timeout: '10m'}},
      db: {run_list: ['recipe[shop-service::db]'], volume_size: 40},
      built: {from_base: true, run_list: ['recipe[shop-service::db]']},
    }
    const nodesOf = (value: Record<string, unknown>): NodesFile => {
      const result = validateNodes(parseSource('nodes.json', JSON.stringify(value)))
      if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'))
      return result.nodes
    }

    /** Runs the rendered user data with /etc/muster in a temp dir, a recording chef-solo and no systemctl. */
    function boot(text: string): {dir: string; etc: string; stderr: string} {
      const dir = mkdtempSync(join(tmpdir(), 'muster-userdata-agent-'))
      const bin = join(dir, 'bin')
      mkdirSync(bin)
      writeFileSync(join(bin, 'chef-solo'), '#!/bin/sh\nexit 0\n')
      chmodSync(join(bin, 'chef-solo'), 0o755)
      const script = text.replace('MUSTER_DIR=/etc/muster', `MUSTER_DIR=${dir}/etc`)
      expect(spawnSync('sh', ['-n', '-c', script]).status).to.equal(0)
      const result = spawnSync('sh', ['-c', script], {encoding: 'utf8', env: {PATH: `${bin}:/usr/bin:/bin`}})
      expect(result.status, result.stderr).to.equal(0)
      return {dir, etc: join(dir, 'etc'), stderr: result.stderr}
    }

    for (const name of ['web', 'db', 'built']) {
      it(`writes agent.json and a nodes.json that muster's loader resolves to the same group (${name})`, () => {
        const nodes = nodesOf(fleet)
        const group = nodes.groups.get(name) as Group
        const {dir, etc, stderr} = boot(renderUserData(template, group, {fleet: fleetSettings(nodes, 'pulumi-name')}))
        try {
          expect(JSON.parse(readFileSync(join(etc, 'agent.json'), 'utf8'))).to.deep.equal({
            group: name,
            etcd: 'http://10.0.0.5:2379,https://etcd.internal:2379',
            project: 'shop',
            nodes: '/etc/muster/nodes.json',
            dna: '/etc/muster/dna.json',
            provision: NODE_PROVISION,
          })
          expect(NODE_PROVISION).to.equal('sudo -n /usr/local/sbin/muster-converge "$MUSTER_ATTRIBUTES" "${MUSTER_RUN_LIST:-}" "${MUSTER_RELEASE_DIR:-}"')
          const onNode = loadNodes({cwd: dir, path: join(etc, 'nodes.json'), env: {}})
          // The group, and the groups that run what it depends on (db), each as the one recipe that runs it.
          expect([...onNode.groups.keys()]).to.deep.equal(name === 'web' ? ['__base__', 'web', 'db'] : ['__base__', name])
          if (name === 'web') expect(onNode.groups.get('db')?.run_list).to.deep.equal(['recipe[shop-service::db]'])
          expect(onNode.groups.get(name)).to.deep.equal(group)
          expect(onNode.registry).to.deep.equal(registry)
          expect(onNode.releaseBucket).to.equal('my-releases')
          // The image has no unit here (no systemctl): it says so instead of failing the boot.
          expect(stderr).to.match(/this image has no muster-agent.service/)
        } finally {
          rmSync(dir, {recursive: true, force: true})
        }
      })
    }

    it('names the Pulumi project when the registry names none, and starts no agent without a registry', () => {
      const withoutProject = nodesOf({...fleet, __base__: {...fleet.__base__, registry: {endpoints: ['http://10.0.0.5:2379']}}})
      const text = renderUserData(template, withoutProject.groups.get('web') as Group, {fleet: fleetSettings(withoutProject, 'pulumi-name')})
      expect(text).to.include('"project": "pulumi-name"')
      const {__base__: {registry: _dropped, ...plainBase}, ...groups} = fleet
      const none = nodesOf({...groups, __base__: plainBase})
      const {dir, etc, stderr} = boot(renderUserData(template, none.groups.get('web') as Group, {fleet: fleetSettings(none, 'pulumi-name')}))
      try {
        const config = JSON.parse(readFileSync(join(etc, 'agent.json'), 'utf8')) as Record<string, string>
        expect(config).not.to.have.property('etcd')
        expect(config.group).to.equal('web')
        expect(stderr).to.match(/names no registry \(__base__\.registry\); the agent is not started/)
      } finally {
        rmSync(dir, {recursive: true, force: true})
      }
    })

    it('keeps the paper\'s groups well under EC2\'s 16 KiB with the agent\'s files', () => {
      const paper = loadNodes({cwd: 'test/fixtures', path: 'paper-nodes.json', env: {}})
      const nodes = {...paper, registry}
      for (const group of nodes.groups.values()) {
        if (group.name === '__base__') continue
        const size = Buffer.byteLength(renderUserData(template, group, {fleet: fleetSettings(nodes, 'paper')}))
        expect(size, group.name).to.be.below(USER_DATA_LIMIT / 2)
      }
    })
  })
})
