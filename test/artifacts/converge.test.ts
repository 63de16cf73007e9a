// templates/muster-converge.sh, the one command the agent's user may run as root: it runs chef-solo
// with the agent's attributes and refuses anything else. Run for real with sh, its fixed roots
// (/var/lib/muster, /etc/muster/solo.rb, chef-solo) pointed at a temp dir and a recording chef-solo.
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {NODE_PROVISION} from '../../src/artifacts/node-agent.js'

const source = readFileSync('templates/muster-converge.sh', 'utf8')

describe('muster-converge', () => {
  let dir: string
  let state: string
  let script: string
  const run = (args: string[]) => spawnSync('sh', [script, ...args], {encoding: 'utf8', env: {PATH: '/usr/bin:/bin'}})
  const chefArgs = (): string => readFileSync(join(dir, 'chef-args'), 'utf8')

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'muster-converge-'))
    state = join(dir, 'var/lib/muster')
    mkdirSync(join(state, 'releases/abc123/cookbooks'), {recursive: true})
    writeFileSync(join(state, 'attributes.json'), '{}\n')
    const chef = join(dir, 'chef-solo')
    writeFileSync(chef, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >"${dir}/chef-args"\n`)
    chmodSync(chef, 0o755)
    script = join(dir, 'muster-converge')
    const rooted = source.replace('STATE_ROOT=/var/lib/muster', `STATE_ROOT=${state}`).replace('SOLO_RB=/etc/muster/solo.rb', `SOLO_RB=${dir}/solo.rb`).replace('CHEF_SOLO=chef-solo', `CHEF_SOLO=${chef}`)
    expect(rooted).not.to.equal(source)
    writeFileSync(script, rooted, {mode: 0o755})
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('is valid sh', () => {
    expect(spawnSync('sh', ['-n', 'templates/muster-converge.sh']).status).to.equal(0)
  })

  it('runs chef-solo with solo.rb and the attributes file', () => {
    const result = run([join(state, 'attributes.json')])
    expect(result.status, result.stderr).to.equal(0)
    expect(chefArgs()).to.equal(`--config\n${dir}/solo.rb\n--json-attributes\n${state}/attributes.json\n--no-color\n`)
  })

  it('passes a run list and a release\'s cookbooks on', () => {
    const result = run([join(state, 'attributes.json'), 'recipe[shop::api],recipe[nginx::default@1.2.0],role[role-web]', join(state, 'releases/abc123')])
    expect(result.status, result.stderr).to.equal(0)
    expect(chefArgs().split('\n').slice(5)).to.deep.equal([
      '--override-runlist',
      'recipe[shop::api],recipe[nginx::default@1.2.0],role[role-web]',
      '--config-option',
      `cookbook_path=${state}/releases/abc123/cookbooks`,
      '',
    ])
  })

  const refusals: Array<[string, () => string[], RegExp]> = [
    ['no arguments', () => [], /expected 1 to 3 arguments, got 0/],
    ['four arguments', () => [join(state, 'attributes.json'), '', '', 'x'], /expected 1 to 3 arguments, got 4/],
    ['attributes outside the state dir', () => ['/etc/shadow'], /must be a plain path under/],
    ['a .. escape', () => [join(state, '../../../etc/passwd')], /must be a plain path under/],
    ['a missing attributes file', () => [join(state, 'nope.json')], /is not a regular file/],
    ['a shell word in the run list', () => [join(state, 'attributes.json'), 'recipe[x];touch /tmp/pwned'], /characters chef names do not use|is not recipe/],
    ['an option in the run list', () => [join(state, 'attributes.json'), '--config-option=x'], /is not recipe\[...\] or role\[...\]/],
    ['an empty item', () => [join(state, 'attributes.json'), 'recipe[]'], /characters chef names do not use/],
    ['a release dir outside releases/', () => [join(state, 'attributes.json'), '', state], /under .*releases/],
    ['a release dir without cookbooks', () => [join(state, 'attributes.json'), '', join(state, 'releases/none')], /has no cookbooks/],
  ]
  for (const [what, args, message] of refusals) {
    it(`refuses ${what} (exit 64) and never starts chef-solo`, () => {
      const result = run(args())
      expect(result.status).to.equal(64)
      expect(result.stderr).to.match(message)
      expect(() => chefArgs()).to.throw(/ENOENT/)
    })
  }

  it('refuses an attributes file that is a symlink', () => {
    symlinkSync('/etc/passwd', join(state, 'link.json'))
    const result = run([join(state, 'link.json')])
    expect(result.status).to.equal(64)
    expect(result.stderr).to.match(/is not a regular file/)
  })

  it('is what the node\'s provision command calls, with the agent\'s MUSTER_* values as arguments', () => {
    // The agent runs its provision command with /bin/sh -c and these variables; sudo is the node's.
    const command = NODE_PROVISION.replace('sudo -n /usr/local/sbin/muster-converge', `sh ${script}`)
    expect(command).not.to.equal(NODE_PROVISION)
    const withRunList = spawnSync('/bin/sh', ['-c', command], {encoding: 'utf8', env: {PATH: '/usr/bin:/bin', MUSTER_ATTRIBUTES: join(state, 'attributes.json'), MUSTER_RUN_LIST: 'recipe[web-delete]'}})
    expect(withRunList.status, withRunList.stderr).to.equal(0)
    expect(chefArgs()).to.include('--override-runlist\nrecipe[web-delete]\n')
    const plain = spawnSync('/bin/sh', ['-c', command], {encoding: 'utf8', env: {PATH: '/usr/bin:/bin', MUSTER_ATTRIBUTES: join(state, 'attributes.json')}})
    expect(plain.status, plain.stderr).to.equal(0)
    expect(chefArgs()).to.equal(`--config\n${dir}/solo.rb\n--json-attributes\n${state}/attributes.json\n--no-color\n`)
  })
})
