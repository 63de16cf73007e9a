// Several groups in one run, some failing, on the real engine, Packer and moto: every group gets
// its own outcome (text and JSON), a failing group never fails a healthy one running beside it,
// a failed bake's log is printed once, and the summary after an update says what was done.
import {DescribeImagesCommand} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

import type {CliResult} from '../support/cli.js'
import {findTool} from '../support/integration.js'
import {motoEc2, type MotoServer} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

interface Outcome {
  group: string
  status: string
  outputs?: {ami?: string}
  error?: {message: string}
}

const count = (text: string, what: string): number => text.split(what).length - 1

describe('stacks under partial failure (integration)', function () {
  this.timeout(300_000)
  let moto: MotoServer
  let project: MusterProject

  before(async function () {
    // bad: Packer fails (its source image does not exist); plain: its program fails (below).
    ({moto, project} = await startStackProject(this, {web: {}, api: {}, bad: {source_ami: 'ami-00000000000000bad'}, plain: {}}))
  })

  after(async () => {
    project?.cleanup()
    await moto?.stop()
  })

  const muster = (...args: string[]): CliResult => project.muster(...args)
  const groupImages = async (group: string): Promise<string[]> => {
    const out = await motoEc2(moto).send(new DescribeImagesCommand({Owners: ['self'], Filters: [{Name: 'tag:muster:group', Values: [group]}]}))
    return (out.Images ?? []).map((i) => i.ImageId ?? '').sort()
  }

  it('packer:run takes several groups and reports each outcome in JSON, exiting 1 when one failed', async () => {
    const result = muster('packer:run', 'web', 'bad', '--yes', '--json', '--parallel', '2')
    expect(result.code, result.stderr).to.equal(1)
    const json = JSON.parse(result.stdout) as {groups: Outcome[]}
    const web = json.groups.find((g) => g.group === 'web')
    const bad = json.groups.find((g) => g.group === 'bad')
    expect(web?.status).to.equal('ok')
    expect(web?.outputs?.ami).to.match(/^ami-[0-9a-f]+$/)
    expect(await groupImages('web')).to.deep.equal([web?.outputs?.ami])
    expect(bad?.status).to.equal('failed')
    expect(bad?.error?.message).to.include('the stack of bad')
    expect(bad?.error?.message).to.include('InvalidAMIID.NotFound')
    expect(await groupImages('bad')).to.deep.equal([])
  })

  it('in text: a line per group, the failed one named with its error; the log of the failed bake is printed once', async () => {
    const result = muster('packer:run', 'api', 'bad', '--yes', '--parallel', '2')
    expect(result.code, result.stderr).to.equal(1)
    const [ami] = await groupImages('api')
    expect(result.stdout).to.include(`api: baked ${ami}`)
    expect(result.stderr).to.match(/bad: failed: Pulumi failed on the stack of bad:\n\s+command failed \(exit 1\): .*InvalidAMIID\.NotFound/)
    // Packer's last line, streamed while it ran, and not repeated by the error.
    expect(count(result.stderr, "bad | ==> Builds finished but no artifacts were created."), result.stderr).to.equal(1)
    expect(count(result.stderr, 'Builds finished but no artifacts were created.'), result.stderr).to.equal(1)
    // After the update, the summary says what was done, not what would be.
    expect(result.stderr).to.include('api: created 4')
    expect(result.stderr).not.to.match(/api: \d+ to create/)
  })

  it('a group whose image is current is said to be current, not baked', async () => {
    const [ami] = await groupImages('api')
    const result = muster('packer:run', 'api', '--yes')
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.equal(`api: ${ami} is current, not rebaked\n`)
    expect(result.stderr).to.include('api: nothing changed')
  })

  it("a failing group's program does not fail a healthy group previewed beside it", () => {
    // Record a fleet for a group without autoscale behind muster's back: its program refuses, with
    // an unhandled rejection in the shared Node process.
    const env = {...process.env, ...project.env, PULUMI_BACKEND_URL: `file://${join(project.dir, '.muster', 'state')}`, PULUMI_CONFIG_PASSPHRASE_FILE: join(project.dir, '.muster', 'passphrase')}
    const pulumi = findTool('pulumi') as string
    expect(spawnSync(pulumi, ['stack', 'init', 'plain'], {cwd: project.dir, env}).status).to.equal(0)
    expect(spawnSync(pulumi, ['config', 'set', 'muster:fleet', 'true', '--stack', 'plain'], {cwd: project.dir, env}).status).to.equal(0)
    const preview = muster('preview', 'plain', 'web', '--parallel', '2')
    expect(preview.code).to.equal(1)
    expect(preview.stdout).to.equal('web: no changes\n')
    expect(preview.stderr).to.include('plain: error:')
    expect(preview.stderr).not.to.match(/web: error|Resource monitor is terminating|One or more errors occurred/)

    const up = muster('up', 'plain', 'web', '--yes', '--parallel', '2')
    expect(up.code).to.equal(1)
    expect(up.stdout).to.equal('web: up to date\n')
    expect(up.stderr).to.match(/plain: failed: Pulumi failed on the stack of plain:[\s\S]*autoscale: false/)
    expect(up.stderr).not.to.match(/Resource monitor is terminating|One or more errors occurred/)
  })
})
