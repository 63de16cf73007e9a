// What a group's stack records when a verb fails or does not apply, on the real engine with Packer
// and moto: a failed fleet or instance verb leaves stacks/Pulumi.GROUP.yaml as it was (here the
// engine fails for real: the AWS provider plugin is not installed, so any fleet or instance
// update fails after muster has recorded its intent), and autoscale:update refuses a group that
// never ran a fleet; a group removed from the nodes file leaves an orphan stack that preview lists
// and destroy takes down.
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {findTool} from '../support/integration.js'
import type {MotoServer} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

const FLEET = {autoscale: {timeout: 30, node_min: 1, node_max: 2}}

describe('stack intent under failure (integration)', function () {
  this.timeout(300_000)
  let moto: MotoServer
  let project: MusterProject

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: FLEET, old: {}}))
  })

  after(async () => {
    project?.cleanup()
    await moto?.stop()
  })

  const configFile = (group: string): string => join(project.dir, 'stacks', `Pulumi.${group}.yaml`)

  it('autoscale:update on a group without a stack refuses, points to autoscale:run and creates no stack', () => {
    const result = project.muster('autoscale:update', 'web', '--yes')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('group web has no Auto Scaling group to update: it never ran a fleet')
    expect(result.stderr).to.include('muster autoscale:run web')
    expect(existsSync(configFile('web')), 'no stack config written').to.equal(false)
    expect(existsSync(join(project.dir, '.muster', 'state', '.pulumi', 'stacks', 'muster', 'web.json')), 'no stack created').to.equal(false)
  })

  it('autoscale:update on a group whose stack records no fleet refuses (blue-green too), changing nothing', () => {
    const baked = project.muster('packer:run', 'web', '--yes')
    expect(baked.code, baked.stderr).to.equal(0)
    const before = readFileSync(configFile('web'), 'utf8')
    expect(before).to.include("muster:fleet: \"false\"")
    for (const strategy of ['rolling', 'blue-green']) {
      const result = project.muster('autoscale:update', 'web', '--strategy', strategy, '--yes')
      expect(result.code, strategy).to.equal(1)
      expect(result.stderr).to.include('it never ran a fleet')
      expect(result.stderr).to.include('muster autoscale:run web')
      expect(readFileSync(configFile('web'), 'utf8')).to.equal(before)
    }
  })

  it('a failed autoscale:run leaves the recorded intent as it was, says so, and packer:run still works', () => {
    const before = readFileSync(configFile('web'))
    const failed = project.muster('autoscale:run', 'web', '--yes')
    expect(failed.code).to.equal(1)
    // The engine's own failure, then what muster did about the intent.
    expect(failed.stderr).to.match(/aws provider plugin|pulumi-resource-aws|Pulumi failed/i)
    expect(failed.stderr).to.include('What this run asked for was not kept: stacks/Pulumi.web.yaml is back as it was')
    expect(readFileSync(configFile('web')).equals(before), 'config file restored byte for byte').to.equal(true)
    // Before the fix the fleet stayed recorded and every later verb on the group failed.
    const baked = project.muster('packer:run', 'web', '--yes', '--json')
    expect(baked.code, baked.stderr).to.equal(0)
    const up = project.muster('up', 'web', '--preview')
    expect(up.code, up.stderr).to.equal(0)
  })

  it('a failed instance:create leaves the recorded intent as it was too', () => {
    const before = readFileSync(configFile('web'))
    const failed = project.muster('instance:create', 'web', '--name', 'debug', '--zone', 'us-east-1a', '--yes')
    expect(failed.code).to.equal(1)
    expect(failed.stderr).to.include('stacks/Pulumi.web.yaml is back as it was')
    expect(readFileSync(configFile('web')).equals(before)).to.equal(true)
    const text = readFileSync(configFile('web'), 'utf8')
    expect(text, text).to.match(/muster:instances: ("|')\[\]/)
    const baked = project.muster('packer:run', 'web', '--yes')
    expect(baked.code, baked.stderr).to.equal(0)
  })

  it('a fleet recorded before (a killed run, an older muster) is taken back with up --withdraw fleet', () => {
    // What a run killed mid-update leaves: the fleet recorded, never created.
    const env = {...process.env, ...project.env, PULUMI_BACKEND_URL: `file://${join(project.dir, '.muster', 'state')}`, PULUMI_CONFIG_PASSPHRASE_FILE: join(project.dir, '.muster', 'passphrase')}
    const set = spawnSync(findTool('pulumi') as string, ['config', 'set', 'muster:fleet', 'true', '--stack', 'web'], {cwd: project.dir, env, encoding: 'utf8'})
    expect(set.status, set.stderr).to.equal(0)
    const blocked = project.muster('packer:run', 'web', '--yes')
    expect(blocked.code).to.equal(1)
    const withdrawn = project.muster('up', 'web', '--withdraw', 'fleet', '--yes')
    expect(withdrawn.code, withdrawn.stderr).to.equal(0)
    expect(readFileSync(configFile('web'), 'utf8')).to.match(/muster:fleet: "false"/)
    const baked = project.muster('packer:run', 'web', '--yes')
    expect(baked.code, baked.stderr).to.equal(0)
    const bad = project.muster('up', 'web', '--withdraw', 'bake')
    expect(bad.code).to.not.equal(0)
    expect(bad.stderr).to.match(/fleet, instances|fleet,instances/)
  })

  it('a group removed from the nodes file: preview lists its orphan stack, destroy takes it down', () => {
    const baked = project.muster('packer:run', 'old', '--yes')
    expect(baked.code, baked.stderr).to.equal(0)
    const nodesFile = join(project.dir, 'nodes.json')
    const nodes = JSON.parse(readFileSync(nodesFile, 'utf8')) as Record<string, unknown>
    delete nodes.old
    writeFileSync(nodesFile, JSON.stringify(nodes))

    const text = project.muster('preview')
    expect(text.code, text.stderr).to.equal(2)
    expect(text.stdout).to.include('Stacks with no group in nodes.json (orphans): old')
    expect(text.stdout).to.include('muster destroy old --remove')
    const markdown = project.muster('preview', '--markdown')
    expect(markdown.stdout).to.include('### Orphan stacks (no group in `nodes.json`)')
    expect(markdown.stdout).to.include('| old | `muster destroy old --remove` |')
    const json = project.muster('preview', '--json')
    expect((JSON.parse(json.stdout) as {orphans: string[]}).orphans).to.deep.equal(['old'])
    // Naming groups previews those only.
    const named = project.muster('preview', 'web', '--json')
    expect((JSON.parse(named.stdout) as {orphans: string[]}).orphans).to.deep.equal([])

    const planned = project.muster('destroy', 'old', '--preview')
    expect(planned.code, planned.stderr).to.equal(0)
    expect(planned.stderr).to.include('old has no group in nodes.json: destroying what its stack recorded')
    expect(planned.stderr).to.match(/delete/)
    const unattended = project.muster('destroy', 'old')
    expect(unattended.code).to.equal(1)
    expect(unattended.stderr).to.include('muster destroy old --yes')
    const destroyed = project.muster('destroy', 'old', '--yes', '--remove')
    expect(destroyed.code, destroyed.stderr).to.equal(0)
    expect(existsSync(configFile('old')), 'stack config removed').to.equal(false)

    const after = project.muster('preview', '--json')
    expect((JSON.parse(after.stdout) as {orphans: string[]}).orphans).to.deep.equal([])
    const gone = project.muster('destroy', 'old', '--yes')
    expect(gone.code).to.equal(1)
    expect(gone.stderr).to.include('no group "old"')
  })
})
