// Environments on the real engine: one nodes file with staging and production, `packer:run --env`
// through the built CLI, the real Pulumi engine (embedded file backend) and the real Packer against
// moto. Each environment gets its own stack (GROUP.ENV), state, config file, Packer template and image.
import {DescribeImagesCommand, EC2Client, type Image} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {existsSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
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
          // Another region: promotion copies the image there.
          west: {region: 'us-west-2'},
          // Never baked: nothing to promote from.
          qa: {},
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

  it('preview --env names the environment in its heading and every stack, in Markdown and on the terminal', () => {
    const md = muster('preview', '--env', 'production', '--markdown')
    expect([0, 2], md.stderr).to.include(md.code)
    expect(md.stdout).to.include('## muster preview: environment `production`')
    expect(md.stdout).to.match(/\| web\.production \| \d+ \| \d+ \| \d+ \| \d+ \|/)
    expect(md.stdout).not.to.include('web.staging')
    const text = muster('preview', '--env', 'staging')
    expect([0, 2], text.stderr).to.include(text.code)
    expect(text.stdout).to.include('Environment staging (stacks GROUP.staging):')
    expect(text.stdout).to.include('web.staging: ')
    const json = JSON.parse(muster('preview', '--env', 'staging', '--json').stdout) as {environment: string; sets: Array<{stack: string}>}
    expect(json.environment).to.equal('staging')
    expect(json.sets.map((set) => set.stack)).to.deep.equal(['web.staging'])
  })

  it('retention in one environment never sees the other environment\'s images', async () => {
    const result = muster('packer:retain', 'web', '--env', 'production', '--keep', '1', '--dry-run', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const report = JSON.parse(result.stdout) as {kept: Array<{id: string}>; removed: unknown[]}
    expect(report.kept.map((i) => i.id)).to.deep.equal([productionAmi])
    expect(report.removed).to.deep.equal([])
  })

  it('refuses an unknown environment, changing nothing', () => {
    const result = muster('packer:run', 'web', '--env', 'nope', '--yes')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('no environment "nope"')
    expect(existsSync(join(dir, 'stacks', 'Pulumi.web.nope.yaml'))).to.equal(false)
  })

  describe('packer:promote', () => {
    const promoteOutputs = (result: CliResult): {image: string; outputs: Record<string, unknown>; copy: string} => {
      const json = JSON.parse(result.stdout) as {image: string; plan: {copy: string}; stack: {groups: Array<{outputs?: Record<string, unknown>}>}}
      return {image: json.image, outputs: json.stack.groups[0]?.outputs ?? {}, copy: json.plan.copy}
    }
    const west = (): EC2Client => new EC2Client({endpoint: moto.endpoint, region: 'us-west-2', credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}, maxAttempts: 1})
    const westImages = async (): Promise<Image[]> => (await west().send(new DescribeImagesCommand({Owners: ['self']}))).Images ?? []
    const stacksDir = (): string[] => readdirSync(join(dir, 'stacks')).sort()

    it('refuses promotion from an environment with no baked image, changing nothing', () => {
      const before = readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')
      const files = stacksDir()
      const result = muster('packer:promote', 'web', '--from', 'qa', '--to', 'production', '--yes')
      expect(result.code).to.equal(1)
      expect(result.stderr).to.include('group web has no baked image in qa')
      expect(result.stderr).to.include('run muster packer:run web --env qa first')
      expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')).to.equal(before)
      expect(stacksDir()).to.deep.equal(files)
      expect(existsSync(stateFile('web.qa'))).to.equal(false)
    })

    it('refuses an unknown environment, naming the flag, changing nothing', () => {
      const before = readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')
      const result = muster('packer:promote', 'web', '--from', 'stagin', '--to', 'production', '--yes')
      expect(result.code).to.equal(1)
      expect(result.stderr).to.include('--from stagin: no environment "stagin"')
      expect(result.stderr).to.include('staging, production, west, qa')
      expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')).to.equal(before)
    })

    it('without --yes and without a terminal it shows the plan and changes nothing', () => {
      const before = readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')
      const result = muster('packer:promote', 'web', '--from', 'staging', '--to', 'production')
      expect(result.code).to.equal(1)
      expect(result.stderr).to.include(`production (us-east-1) runs ${stagingAmi}, the image staging runs`)
      expect(result.stderr).to.include('--yes')
      expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')).to.equal(before)
    })

    it('same region: production\'s stack outputs staging\'s exact AMI, pinned in its intent', () => {
      const result = muster('packer:promote', 'web', '--from', 'staging', '--to', 'production', '--yes', '--json')
      expect(result.code, result.stderr).to.equal(0)
      const {image, outputs, copy} = promoteOutputs(result)
      expect(image).to.equal(stagingAmi)
      expect(copy).to.equal('none')
      expect(outputs.ami).to.equal(stagingAmi)
      expect(outputs.promotedFrom).to.deep.equal({environment: 'staging', image: stagingAmi, region: 'us-east-1'})
      const config = readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')
      expect(config).to.include('muster:image').and.include(stagingAmi)
      // The engine's own record: production's stack state holds the promoted image as its output.
      expect(readFileSync(stateFile('web.production'), 'utf8')).to.include(stagingAmi)
    })
  
    let copyId = ''

    it('another region: copies the AMI with its tags plus where it came from, and the west stack outputs the copy', async () => {
      const result = muster('packer:promote', 'web', '--from', 'staging', '--to', 'west', '--yes', '--json')
      expect(result.code, result.stderr).to.equal(0)
      const {image, outputs, copy} = promoteOutputs(result)
      expect(copy).to.equal('copy')
      copyId = image
      expect(copyId).to.match(/^ami-[0-9a-f]+$/)
      expect(copyId).not.to.equal(stagingAmi)
      expect(outputs.ami).to.equal(copyId)
      expect(outputs.promotedFrom).to.deep.equal({environment: 'staging', image: stagingAmi, region: 'us-east-1'})
      const copies = await westImages()
      expect(copies.map((i) => i.ImageId)).to.deep.equal([copyId])
      expect(tagsOf(copies[0])).to.include({
        'muster:group': 'web',
        'muster:project': 'muster',
        // The copy is west's image (its retention manages it); where it came from is in its source tags.
        'muster:environment': 'west',
        Name: 'web.staging',
        env: 'staging',
        'muster:source-image': stagingAmi,
        'muster:source-region': 'us-east-1',
      })
      expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.west.yaml'), 'utf8')).to.include(copyId)
    })

    it('promoting again reuses the copy instead of copying twice, and changes nothing', async () => {
      const result = muster('packer:promote', 'web', '--from', 'staging', '--to', 'west', '--yes', '--json')
      expect(result.code, result.stderr).to.equal(0)
      const {image, copy, outputs} = promoteOutputs(result)
      expect(copy).to.equal('reuse')
      expect(image).to.equal(copyId)
      expect(outputs.ami).to.equal(copyId)
      expect(result.stderr).to.include(`${copyId} in us-west-2 is a copy of ${stagingAmi} made earlier`)
      expect((await westImages()).map((i) => i.ImageId)).to.deep.equal([copyId])
    })

    it('retention in staging with keep 1 spares the older AMI that only production uses, "in use by production"', async () => {
      // A new staging image: staging's own stack now runs it, production still runs the promoted one.
      project.writeCookbook('package "nginx"\npackage "curl"\n')
      const baked = muster('packer:run', 'web', '--env', 'staging', '--yes', '--json')
      expect(baked.code, baked.stderr).to.equal(0)
      const newer = amiOf(baked)
      expect(newer).not.to.equal(stagingAmi)
      const result = muster('packer:retain', 'web', '--env', 'staging', '--keep', '1', '--json')
      expect(result.code, result.stderr).to.equal(0)
      const report = JSON.parse(result.stdout) as {kept: Array<{id: string; reason: string; usedBy: Array<{environment?: string}>}>; deregistered: string[]}
      expect(report.deregistered).to.deep.equal([])
      const spared = report.kept.find((i) => i.id === stagingAmi)
      expect(spared?.reason).to.equal('in-use')
      expect(spared?.usedBy.map((u) => u.environment)).to.include('production')
      expect(report.kept.map((i) => i.id).sort()).to.deep.equal([stagingAmi, newer].sort())
      expect((await images()).map((i) => i.ImageId)).to.include(stagingAmi)
      const text = muster('packer:retain', 'web', '--env', 'staging', '--keep', '1', '--dry-run')
      expect(text.code, text.stderr).to.equal(0)
      expect(text.stdout).to.match(new RegExp(`${stagingAmi}.*in use by production`))
    })

    it('packer:run in production bakes its own image again instead of the pinned one', () => {
      const preview = muster('packer:run', 'web', '--env', 'production', '--preview')
      expect(preview.code, preview.stderr).to.equal(0)
      expect(preview.stderr).to.include(`pinned to ${stagingAmi} (promoted from staging)`)
      // A preview records nothing: production stays pinned.
      expect(readFileSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'), 'utf8')).to.include('muster:image')
    })

    it('a copy no stack pins any more is retired by its region\'s environment (packer:retain --env west); the pinned one stays', async () => {
      // Staging now runs a newer image: promoting it to west makes a second copy, and west's pin moves to it.
      const promoted = muster('packer:promote', 'web', '--from', 'staging', '--to', 'west', '--yes', '--json')
      expect(promoted.code, promoted.stderr).to.equal(0)
      const {image: newCopy, copy} = promoteOutputs(promoted)
      expect(copy).to.equal('copy')
      expect(newCopy).not.to.equal(copyId)
      expect((await westImages()).map((i) => i.ImageId).sort()).to.deep.equal([copyId, newCopy].sort())
      const dry = muster('packer:retain', 'web', '--env', 'west', '--keep', '1', '--dry-run', '--json')
      expect(dry.code, dry.stderr).to.equal(0)
      const planned = JSON.parse(dry.stdout) as {kept: Array<{id: string; usedBy: Array<{environment?: string}>}>; removed: Array<{id: string}>}
      expect(planned.removed.map((i) => i.id)).to.deep.equal([copyId])
      expect(planned.kept.map((i) => i.id)).to.deep.equal([newCopy])
      expect(planned.kept[0]?.usedBy.map((u) => u.environment)).to.include('west')
      const result = muster('packer:retain', 'web', '--env', 'west', '--keep', '1', '--json')
      expect(result.code, result.stderr).to.equal(0)
      expect((JSON.parse(result.stdout) as {deregistered: string[]}).deregistered).to.deep.equal([copyId])
      expect((await westImages()).map((i) => i.ImageId)).to.deep.equal([newCopy])
      // Staging's images, in their own region, were not west's to touch.
      expect((await images()).map((i) => i.ImageId)).to.include(stagingAmi)
    })

    it('an environment renamed in the nodes file: its pin still spares the image, and its stack is an orphan every environment lists and destroy takes down', async () => {
      const original = readFileSync(join(dir, 'nodes.json'), 'utf8')
      const nodes = JSON.parse(original) as {__environments__: Record<string, unknown>}
      const {production, ...others} = nodes.__environments__
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify({...nodes, __environments__: {...others, prod: production}}))
      try {
        // Only web.production's pin (an environment the file no longer declares) keeps staging's older image.
        const retain = muster('packer:retain', 'web', '--env', 'staging', '--keep', '1', '--json')
        expect(retain.code, retain.stderr).to.equal(0)
        const report = JSON.parse(retain.stdout) as {kept: Array<{id: string; usedBy: Array<{environment?: string}>}>; deregistered: string[]}
        expect(report.deregistered).to.deep.equal([])
        expect(report.kept.find((i) => i.id === stagingAmi)?.usedBy.map((u) => u.environment)).to.include('production')
        expect((await images()).map((i) => i.ImageId)).to.include(stagingAmi)
        // No environment is "production" now, yet its stack is there: listed from any environment, with the command that takes it down.
        for (const env of ['staging', 'prod']) {
          const status = muster('status', '--env', env)
          expect(status.code, status.stderr).to.equal(0)
          expect(status.stdout).to.include('(orphans): web.production')
          expect(status.stdout).to.include('muster destroy web.production --remove')
        }
        const destroyed = muster('destroy', 'web.production', '--yes', '--remove')
        expect(destroyed.code, destroyed.stderr).to.equal(0)
        expect(destroyed.stderr).to.include('web.production has no group in nodes.json')
        expect(existsSync(stateFile('web.production'))).to.equal(false)
        expect(existsSync(join(dir, 'stacks', 'Pulumi.web.production.yaml'))).to.equal(false)
        // The staging stack was not touched.
        expect(existsSync(stateFile('web.staging'))).to.equal(true)
      } finally {
        writeFileSync(join(dir, 'nodes.json'), original)
      }
    })
  })
})
