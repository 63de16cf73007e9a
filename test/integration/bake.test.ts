// packer:run end to end: the built CLI drives the real Pulumi engine (embedded file backend) whose
// command resource runs the real Packer against moto; the AMI comes back as a stack output.
import {DescribeImagesCommand} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'

import type {CliResult} from '../support/cli.js'
import {motoEc2, type MotoServer} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

describe('packer:run through the Pulumi engine (integration)', function () {
  this.timeout(300_000)
  let moto: MotoServer
  let project: MusterProject
  let dir: string

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: {description: 'web nodes'}, static: {packer: false}}))
    dir = project.dir
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
  const amiOf = (result: CliResult): string => {
    const json = JSON.parse(result.stdout) as {groups: Array<{outputs?: {ami?: string}}>}
    return String(json.groups[0]?.outputs?.ami)
  }

  let firstAmi = ''

  it('without a terminal and without --yes it previews, changes nothing and says to use --yes', () => {
    const result = muster('packer:run', 'web')
    expect(result.code, result.stderr).to.equal(1)
    expect(result.stderr).to.include('--yes')
    expect(result.stderr).to.match(/web: \d+ to create/)
    // The first run of a project says where its state lives.
    expect(result.stderr).to.include('State lives in .muster/state')
  })

  it('bakes an AMI, returns it as a stack output and records the intent in stacks/', async () => {
    const result = muster('packer:run', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    firstAmi = amiOf(result)
    expect(firstAmi).to.match(/^ami-[0-9a-f]+$/)
    expect(await groupImages('web')).to.deep.equal([firstAmi])
    expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.yaml'), 'utf8')).to.match(/muster:bake: "true"/)
    expect(readFileSync(join(dir, 'packer', 'web.pkr.json'), 'utf8')).to.include('"muster:group": "web"')
    // The embedded backend: state and a private passphrase, both ignored by git.
    expect(existsSync(join(dir, '.muster', 'state', '.pulumi'))).to.equal(true)
    expect(statSync(join(dir, '.muster', 'passphrase')).mode & 0o777).to.equal(0o600)
    expect(readFileSync(join(dir, '.muster', '.gitignore'), 'utf8')).to.equal('*\n')
    expect(result.stderr).not.to.include('State lives in')
    // Packer's output reached the user while it ran.
    expect(result.stderr).to.include('web | ')
  })

  it('does not rebake an unchanged group', async () => {
    const result = muster('packer:run', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(amiOf(result)).to.equal(firstAmi)
    expect(await groupImages('web')).to.deep.equal([firstAmi])
    expect(result.stderr).to.include('web: nothing changed')
    expect(result.stderr).not.to.include('to create')
  })

  it('rebakes when a cookbook changes, keeping the old image', async () => {
    project.writeCookbook('package "nginx"\npackage "curl"\n')
    const preview = muster('packer:run', 'web', '--preview')
    expect(preview.code, preview.stderr).to.equal(0)
    // The bake is replaced, and retention (triggered by the new AMI id) runs again after it.
    expect(preview.stderr, preview.stderr).to.match(/web: 2 to replace/)
    expect(preview.stderr).to.match(/\+- pulumi-nodejs:dynamic\/muster:ShellCommand packer-build \(triggers\)/)
    expect(await groupImages('web')).to.deep.equal([firstAmi])
    const result = muster('packer:run', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const second = amiOf(result)
    expect(second).to.not.equal(firstAmi)
    expect(await groupImages('web')).to.deep.equal([firstAmi, second].sort())
  })

  it('refuses a group that never bakes', () => {
    const result = muster('packer:run', 'static', '--yes')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('group static has packer: false')
  })
})
