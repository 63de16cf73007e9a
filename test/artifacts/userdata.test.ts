import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {renderDna} from '../../src/artifacts/dna.js'
import {renderRole} from '../../src/artifacts/role.js'
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
})
