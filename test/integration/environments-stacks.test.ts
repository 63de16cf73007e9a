// Environments on the real engine: one nodes file with staging and production, `packer:run --env`
// through the built CLI, the real Pulumi engine (embedded file backend) and the real Packer against
// moto. Each environment gets its own stack (GROUP.ENV), state, config file, Packer template and image.
import {DescribeImagesCommand, type Image} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {CliResult} from '../support/cli.js'
import {motoEc2, type MotoServer} from '../support/moto.js'
import {motoPackerOptions, startStackProject, type MusterProject} from '../support/project.js'

describe('environments: one stack per group per environment (integration)', function () {
  this.timeout(600_000)
  let moto: MotoServer
  let project: MusterProject
  let dir: string

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: {}}))
    dir = project.dir
    const nodes = JSON.parse(readFileSync(join(dir, 'nodes.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(
      join(dir, 'nodes.json'),
      JSON.stringify({
        __environments__: {
          staging: {default: true, default_attributes: {environment: 'staging'}, tags: {env: 'staging'}},
          production: {default_attributes: {environment: 'production'}},
        },
        ...nodes,
        __base__: {...(nodes.__base__ as Record<string, unknown>), packer: motoPackerOptions(moto)},
      }),
    )
  })

  after(async () => {
    project?.cleanup()
    await moto?.stop()
  })

  const muster = (...args: string[]): CliResult => project.muster(...args)
  const images = async (): Promise<Image[]> => {
    const out = await motoEc2(moto).send(new DescribeImagesCommand({Owners: ['self'], Filters: [{Name: 'tag:muster:group', Values: ['web']}]}))
    return out.Images ?? []
  }
  const tagsOf = (image: Image | undefined): Record<string, string> => Object.fromEntries((image?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']))
  const amiOf = (result: CliResult): string => {
    const json = JSON.parse(result.stdout) as {groups: Array<{outputs?: {ami?: string}}>}
    return String(json.groups[0]?.outputs?.ami)
  }
  const stateFile = (stack: string): string => join(dir, '.muster', 'state', '.pulumi', 'stacks', 'muster', `${stack}.json`)

  let stagingAmi = ''
  let productionAmi = ''

  it('packer:run --env staging makes stack web.staging, its config file, template and an image tagged for staging', async () => {
    const result = muster('packer:run', 'web', '--env', 'staging', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    stagingAmi = amiOf(result)
    expect(stagingAmi).to.match(/^ami-[0-9a-f]+$/)
    // Progress and previews name the stack as Pulumi shows it.
    expect(result.stderr).to.include('web.staging')
    expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.staging.yaml'), 'utf8')).to.match(/muster:bake: "true"/)
    expect(existsSync(join(dir, 'stacks', 'Pulumi.web.yaml'))).to.equal(false)
    expect(existsSync(stateFile('web.staging'))).to.equal(true)
    expect(readFileSync(join(dir, 'packer', 'web.staging.pkr.json'), 'utf8')).to.include('"muster:environment": "staging"')
    expect(existsSync(join(dir, '.muster', 'manifests', 'web.staging.json'))).to.equal(true)
    const image = (await images()).find((i) => i.ImageId === stagingAmi)
    expect(tagsOf(image)).to.include({'muster:group': 'web', 'muster:environment': 'staging', 'muster:project': 'muster', Name: 'web.staging', env: 'staging'})
    expect(image?.Name).to.match(/^web\.staging \d{14}$/)
  })

  it('packer:run --env production makes a second stack with its own state and its own image', async () => {
    const result = muster('packer:run', 'web', '--env', 'production', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    productionAmi = amiOf(result)
    expect(productionAmi).to.match(/^ami-[0-9a-f]+$/)
    expect(productionAmi).not.to.equal(stagingAmi)
    expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')).to.match(/muster:bake: "true"/)
    expect(existsSync(stateFile('web.production'))).to.equal(true)
    expect(existsSync(join(dir, 'packer', 'web.production.pkr.json'))).to.equal(true)
    const all = await images()
    expect(all.map((i) => i.ImageId).sort()).to.deep.equal([stagingAmi, productionAmi].sort())
    expect(tagsOf(all.find((i) => i.ImageId === productionAmi))).to.include({'muster:environment': 'production', Name: 'web.production'})
    // Each stack holds its own image only.
    expect(readFileSync(stateFile('web.production'), 'utf8')).to.include(productionAmi).and.not.include(stagingAmi)
    expect(readFileSync(stateFile('web.staging'), 'utf8')).to.include(stagingAmi).and.not.include(productionAmi)
  })

  it('the default environment (staging) is what a run without --env works on, and it has nothing to do', async () => {
    const result = muster('packer:run', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(amiOf(result)).to.equal(stagingAmi)
    expect(result.stderr).to.include('web.staging: nothing changed')
    expect((await images()).length).to.equal(2)
  })

  it('retention in one environment never sees the other environment\'s images', async () => {
    const result = muster('packer:retain', 'web', '--env', 'production', '--keep', '1', '--dry-run', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const report = JSON.parse(result.stdout) as {kept: Array<{id: string}>; removed: unknown[]}
    expect(report.kept.map((i) => i.id)).to.deep.equal([productionAmi])
    expect(report.removed).to.deep.equal([])
  })

  it('refuses an unknown environment, changing nothing', () => {
    const result = muster('packer:run', 'web', '--env', 'qa', '--yes')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('no environment "qa"')
    expect(existsSync(join(dir, 'stacks', 'Pulumi.web.qa.yaml'))).to.equal(false)
  })
})
