// AMI retention and the ASG look-up against a real moto server, through the real SDK store (its
// endpoint and credentials from the environment, as in the CLI), and once through the built CLI.
import {AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand} from '@aws-sdk/client-auto-scaling'
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {DEFAULT_PROJECT_NAME} from '../../src/artifacts/project-name.js'
import {createAsgLookup, findGroupAsgs} from '../../src/aws/asg.js'
import {createImageStore, type GroupImage, type ImageStore} from '../../src/aws/ec2.js'
import {deleteAllImages, retireImages} from '../../src/aws/retention.js'
import {UserError} from '../../src/errors.js'
import {makeTempDir, removeDir, runMuster} from '../support/cli.js'
import {requireTool} from '../support/integration.js'
import {motoEc2, type MotoServer, registerImage, startMoto} from '../support/moto.js'

/** The project of the CLI tests below (no Pulumi.yaml: muster's default project name). */
const OWNER = {project: DEFAULT_PROJECT_NAME}

/** moto's CreationDate has whole seconds: wait for the next one so images get distinct dates. */
async function nextSecond(): Promise<void> {
  const wait = 1000 - (Date.now() % 1000) + 20
  await new Promise((resolve) => setTimeout(resolve, wait))
}

interface Seeded {
  /** The group "web"'s images, oldest first. */
  web: string[]
  /** Snapshot ids by image id. */
  snapshots: Map<string, string[]>
  db: string
}

/**
 * Six images of group "web" and one of group "db". `spaced`: one second apart and named in the
 * opposite order of their creation (web-f … web-a), so only the date can order them right.
 * Otherwise at once, named web-1 … web-6 in creation order, which the tie-break by name keeps.
 */
async function seedImages(moto: MotoServer, ec2: EC2Client, options: {spaced?: boolean} = {}): Promise<Seeded> {
  const web: string[] = []
  const names = options.spaced ? ['f', 'e', 'd', 'c', 'b', 'a'] : ['1', '2', '3', '4', '5', '6']
  for (const suffix of names) {
    if (options.spaced) await nextSecond()
    web.push(await registerImage(moto, {name: `web-${suffix}`, tags: {'muster:group': 'web', 'muster:project': OWNER.project, 'muster:template-hash': suffix}}))
  }
  const db = await registerImage(moto, {name: 'db-1', tags: {'muster:group': 'db', 'muster:project': OWNER.project}})
  const {Images} = await ec2.send(new DescribeImagesCommand({Owners: ['self']}))
  const snapshots = new Map((Images ?? []).map((i) => [i.ImageId ?? '', (i.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []))]))
  return {web, db, snapshots}
}

async function imageIds(ec2: EC2Client): Promise<string[]> {
  const {Images} = await ec2.send(new DescribeImagesCommand({Owners: ['self']}))
  return (Images ?? []).map((i) => i.ImageId ?? '').sort()
}

async function snapshotIds(ec2: EC2Client): Promise<string[]> {
  const {Snapshots} = await ec2.send(new DescribeSnapshotsCommand({OwnerIds: ['self']}))
  return (Snapshots ?? []).map((s) => s.SnapshotId ?? '').sort()
}

async function runInstance(ec2: EC2Client, imageId: string): Promise<string> {
  const {Instances} = await ec2.send(new RunInstancesCommand({ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro'}))
  const id = Instances?.[0]?.InstanceId
  if (!id) throw new Error('moto RunInstances returned no instance')
  return id
}

const at = (list: readonly string[], i: number): string => {
  const value = list[i]
  if (value === undefined) throw new Error(`no element ${i}`)
  return value
}

describe('AMI retention against moto', function () {
  this.timeout(120_000)
  let moto: MotoServer
  let ec2: EC2Client
  let autoscaling: AutoScalingClient
  let store: ImageStore & {close(): void}
  const saved = new Map<string, string | undefined>()

  before(async function () {
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    moto = await startMoto()
    // The store finds endpoint and credentials in the environment, as it does in the CLI.
    for (const [key, value] of Object.entries(moto.env)) {
      saved.set(key, process.env[key])
      process.env[key] = value
    }
    ec2 = motoEc2(moto)
    autoscaling = new AutoScalingClient({endpoint: moto.endpoint, region: moto.region, credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}, maxAttempts: 1})
    store = createImageStore({region: moto.region, snapshotRetryDelaysMs: [100]})
  })

  after(async function () {
    store?.close()
    ec2?.destroy()
    autoscaling?.destroy()
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
    await moto?.stop()
  })

  beforeEach(async function () {
    await moto.reset()
  })

  it('lists only the group\'s own images, with creation dates and snapshots', async () => {
    const seeded = await seedImages(moto, ec2)
    const images = await store.listGroupImages('web')
    expect(images.map((i) => i.id).sort()).to.deep.equal([...seeded.web].sort())
    const first = images.find((i) => i.id === seeded.web[0]) as GroupImage
    expect(first).to.include({name: 'web-1', state: 'available'})
    expect(first.snapshotIds).to.deep.equal(seeded.snapshots.get(first.id))
    expect(Date.parse(first.created)).to.be.greaterThan(0)
    expect(await store.listGroupImages('nope')).to.deep.equal([])
  })

  it('keeps the newest 2 and the old images a launch template version and a running instance use; removes the rest with their snapshots', async () => {
    const seeded = await seedImages(moto, ec2, {spaced: true})
    const [w1, w2, w3, w4, w5, w6] = [0, 1, 2, 3, 4, 5].map((i) => at(seeded.web, i)) as [string, string, string, string, string, string]
    // Version 1 (not the latest) of a template uses the oldest image.
    await ec2.send(new CreateLaunchTemplateCommand({LaunchTemplateName: 'web-fleet', LaunchTemplateData: {ImageId: w1, InstanceType: 't3.micro'}}))
    await ec2.send(new CreateLaunchTemplateVersionCommand({LaunchTemplateName: 'web-fleet', LaunchTemplateData: {ImageId: w6}}))
    const instanceId = await runInstance(ec2, w3)
    const before = await snapshotIds(ec2)

    const result = await retireImages({store, group: 'web', owner: OWNER, keep: 2, dryRun: false})

    expect(result.kept.map((k) => [k.id, k.reason])).to.deep.equal([[w6, 'newest'], [w5, 'newest'], [w3, 'in-use'], [w1, 'in-use']])
    expect(result.kept.find((k) => k.id === w1)?.usedBy.map((u) => u.description)).to.deep.equal([`launch template web-fleet (${result.kept.find((k) => k.id === w1)?.usedBy[0]?.id}) version 1`])
    expect(result.kept.find((k) => k.id === w3)?.usedBy).to.deep.equal([{kind: 'instance', id: instanceId, description: `instance ${instanceId} (running)`}])
    expect(result.removed.map((r) => [r.id, r.reason])).to.deep.equal([[w4, 'older'], [w2, 'older']])
    expect(result.deregistered).to.deep.equal([w4, w2])
    const gone = [...(seeded.snapshots.get(w4) ?? []), ...(seeded.snapshots.get(w2) ?? [])]
    expect(gone).to.have.length(2)
    expect(result.deletedSnapshots).to.deep.equal(gone)
    expect(result.failures).to.deep.equal([])

    expect(await imageIds(ec2)).to.deep.equal([w1, w3, w5, w6, seeded.db].sort())
    expect(await snapshotIds(ec2)).to.deep.equal(before.filter((s) => !gone.includes(s)))

    // Run again: nothing more goes.
    const again = await retireImages({store, group: 'web', owner: OWNER, keep: 2, dryRun: false})
    expect(again.removed).to.deep.equal([])
  })

  it('in staging with keep 1: spares the older image only production\'s launch template uses ("in use by production"), never sees production\'s own', async () => {
    const staging = {project: OWNER.project, environment: 'staging'}
    const tags = (environment: string) => ({'muster:group': 'web', 'muster:project': OWNER.project, 'muster:environment': environment})
    const older = await registerImage(moto, {name: 'web.staging-1', tags: tags('staging')})
    await nextSecond()
    const newer = await registerImage(moto, {name: 'web.staging-2', tags: tags('staging')})
    const production = await registerImage(moto, {name: 'web.production-1', tags: tags('production')})
    // Production's fleet was promoted the older staging image: its launch template, tagged for production, launches it.
    await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'web.production-x',
        LaunchTemplateData: {ImageId: older, InstanceType: 't3.micro'},
        TagSpecifications: [{ResourceType: 'launch-template', Tags: [{Key: 'muster:environment', Value: 'production'}]}],
      }),
    )
    const result = await retireImages({store, group: 'web', owner: staging, keep: 1, dryRun: false})
    expect(result.kept.map((k) => [k.id, k.reason])).to.deep.equal([[newer, 'newest'], [older, 'in-use']])
    expect(result.kept.find((k) => k.id === older)?.usedBy.map((u) => u.environment)).to.deep.equal(['production'])
    expect(result.removed).to.deep.equal([])
    // Production's image is another environment's: not counted, not touched.
    expect(result.otherProjects).to.equal(1)
    expect(await imageIds(ec2)).to.include.members([older, newer, production])
    const {formatRetention} = await import('../../src/ui/retention.js')
    expect(formatRetention([result], {color: false})).to.match(new RegExp(`${older}.*in use by production`))
  })

  it('a dry run plans the same and changes nothing', async () => {
    const seeded = await seedImages(moto, ec2)
    await runInstance(ec2, at(seeded.web, 0))
    const images = await imageIds(ec2)
    const snapshots = await snapshotIds(ec2)
    const result = await retireImages({store, group: 'web', owner: OWNER, keep: 3, dryRun: true})
    expect(result.removed.map((r) => r.id)).to.deep.equal([at(seeded.web, 2), at(seeded.web, 1)])
    expect(result.kept.map((k) => k.id)).to.deep.equal([at(seeded.web, 5), at(seeded.web, 4), at(seeded.web, 3), at(seeded.web, 0)])
    expect(result.deregistered).to.deep.equal([])
    expect(result.deletedSnapshots).to.deep.equal([])
    expect(await imageIds(ec2)).to.deep.equal(images)
    expect(await snapshotIds(ec2)).to.deep.equal(snapshots)
  })

  it('finds images used through Auto Scaling groups (launch configuration, launch template, mixed instances), not by terminated instances', async () => {
    const [a, b, c, d] = (await Promise.all(['a', 'b', 'c', 'd'].map((n) => registerImage(moto, {name: `web-${n}`, tags: {'muster:group': 'web'}})))) as [string, string, string, string]
    await autoscaling.send(new CreateLaunchConfigurationCommand({LaunchConfigurationName: 'legacy', ImageId: a, InstanceType: 't3.micro'}))
    await autoscaling.send(new CreateAutoScalingGroupCommand({AutoScalingGroupName: 'legacy-asg', MinSize: 0, MaxSize: 0, AvailabilityZones: ['us-east-1a'], LaunchConfigurationName: 'legacy'}))
    const {LaunchTemplate} = await ec2.send(new CreateLaunchTemplateCommand({LaunchTemplateName: 'mixed', LaunchTemplateData: {ImageId: b}}))
    await autoscaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: 'mixed-asg',
        MinSize: 0,
        MaxSize: 0,
        AvailabilityZones: ['us-east-1a'],
        MixedInstancesPolicy: {LaunchTemplate: {LaunchTemplateSpecification: {LaunchTemplateId: LaunchTemplate?.LaunchTemplateId, Version: '$Latest'}, Overrides: [{InstanceType: 't3.micro'}]}},
      }),
    )
    await autoscaling.send(new CreateAutoScalingGroupCommand({AutoScalingGroupName: 'lt-asg', MinSize: 0, MaxSize: 0, AvailabilityZones: ['us-east-1a'], LaunchTemplate: {LaunchTemplateName: 'mixed'}}))
    const terminated = await runInstance(ec2, c)
    await ec2.send(new TerminateInstancesCommand({InstanceIds: [terminated]}))

    const inUse = await store.imagesInUse([a, b, c, d])
    expect(inUse.get(a)?.map((u) => u.description)).to.deep.equal(['Auto Scaling group legacy-asg (launch configuration legacy)'])
    expect(inUse.get(b)?.map((u) => u.description).sort()).to.deep.equal([
      'Auto Scaling group lt-asg (launch template mixed version $Default)',
      'Auto Scaling group mixed-asg (launch template mixed version $Latest)',
      `launch template mixed (${LaunchTemplate?.LaunchTemplateId}) version 1`,
    ])
    expect(inUse.has(c), 'a terminated instance uses nothing').to.equal(false)
    expect(inUse.has(d)).to.equal(false)
    expect(await store.imagesInUse([])).to.deep.equal(new Map())
  })

  it('sees every launch template and every version past moto\'s page of 15', async () => {
    const old1 = await registerImage(moto, {name: 'web-x', tags: {'muster:group': 'web'}})
    const old2 = await registerImage(moto, {name: 'web-y', tags: {'muster:group': 'web'}})
    for (let i = 0; i < 16; i++) await ec2.send(new CreateLaunchTemplateCommand({LaunchTemplateName: `t${String(i).padStart(2, '0')}`, LaunchTemplateData: {InstanceType: 't3.micro'}}))
    await ec2.send(new CreateLaunchTemplateCommand({LaunchTemplateName: 'zz-last', LaunchTemplateData: {ImageId: old1}}))
    for (let v = 2; v <= 17; v++) await ec2.send(new CreateLaunchTemplateVersionCommand({LaunchTemplateName: 't00', LaunchTemplateData: {InstanceType: 't3.small'}}))
    await ec2.send(new CreateLaunchTemplateVersionCommand({LaunchTemplateName: 't00', LaunchTemplateData: {ImageId: old2}}))
    const inUse = await store.imagesInUse()
    expect(inUse.get(old1)?.map((u) => u.kind)).to.deep.equal(['launch-template'])
    expect(inUse.get(old2)?.[0]?.description).to.match(/^launch template t00 \(lt-\w+\) version 18$/)
  })

  it('deleteAllImages refuses while an image is in use and removes every image of the group with --force', async () => {
    const seeded = await seedImages(moto, ec2)
    const instanceId = await runInstance(ec2, at(seeded.web, 2))
    const images = await imageIds(ec2)
    let error: unknown
    try {
      await deleteAllImages({store, group: 'web', owner: OWNER, force: false, dryRun: false})
    } catch (caught) {
      error = caught
    }
    expect(error).to.be.instanceOf(UserError)
    expect((error as UserError).message).to.include(`${at(seeded.web, 2)} web-3: used by instance ${instanceId} (running)`)
    expect((error as UserError).hint).to.include('--force')
    expect(await imageIds(ec2)).to.deep.equal(images)

    const result = await deleteAllImages({store, group: 'web', owner: OWNER, force: true, dryRun: false})
    expect([...result.deregistered].sort()).to.deep.equal([...seeded.web].sort())
    expect(result.deletedSnapshots).to.have.length(6)
    expect(await imageIds(ec2)).to.deep.equal([seeded.db])
    expect(await snapshotIds(ec2)).to.not.include.members(result.deletedSnapshots)
  })

  it('findGroupAsgs finds the ASGs tagged group=GROUP and tells which carry the stack tag', async () => {
    const asg = async (name: string, tags: Record<string, string>): Promise<void> => {
      await autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          MinSize: 0,
          MaxSize: 0,
          AvailabilityZones: ['us-east-1a'],
          LaunchConfigurationName: 'lc',
          Tags: Object.entries(tags).map(([Key, Value]) => ({Key, Value, PropagateAtLaunch: true})),
        }),
      )
    }
    await autoscaling.send(new CreateLaunchConfigurationCommand({LaunchConfigurationName: 'lc', ImageId: moto.sourceImages[0]?.id, InstanceType: 't3.micro'}))
    await asg('hand-made', {group: 'web'})
    await asg('from-stack', {group: 'web', 'pulumi:stack': 'web'})
    await asg('other', {group: 'db'})
    await asg('untagged', {})

    const found = await findGroupAsgs(moto.region, 'web')
    expect(found.map((g) => [g.name, g.stack])).to.deep.equal([['from-stack', 'web'], ['hand-made', undefined]])
    expect(found[1]?.tags).to.deep.equal({group: 'web'})
    expect(found[0]?.arn).to.match(/^arn:aws:autoscaling:/)
    expect(await findGroupAsgs(moto.region, 'nope')).to.deep.equal([])
    const lookup = createAsgLookup({region: moto.region, stackTag: 'muster:stack'})
    try {
      expect((await lookup.findGroupAsgs('web')).map((g) => g.stack)).to.deep.equal([undefined, undefined])
    } finally {
      lookup.close()
    }
  })

  describe('through the built CLI', () => {
    let dir: string
    beforeEach(() => {
      dir = makeTempDir()
      writeFileSync(
        join(dir, 'nodes.json'),
        JSON.stringify({
          __base__: {autoscale: false, type: 'amazon-ebs', region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-0a0b0c0d0e0f01234', security_groups: ['default'], run_list: ['recipe[base]']},
          web: {description: 'web servers', run_list: ['recipe[web]']},
          db: {description: 'databases', run_list: ['recipe[db]']},
          static: {description: 'never baked', packer: false},
        }),
      )
    })
    afterEach(() => removeDir(dir))

    it('packer:retain keeps N and prints one line per image; --json gives the result', async () => {
      const seeded = await seedImages(moto, ec2)
      await runInstance(ec2, at(seeded.web, 0))
      const dry = runMuster(['packer:retain', 'web', '--keep', '2', '--dry-run', '--json'], {cwd: dir, env: moto.env})
      expect(dry.code, dry.stderr).to.equal(0)
      const planned = JSON.parse(dry.stdout) as {removed: Array<{id: string}>; dryRun: boolean}
      expect(planned.dryRun).to.equal(true)
      expect(planned.removed.map((r) => r.id)).to.deep.equal([at(seeded.web, 3), at(seeded.web, 2), at(seeded.web, 1)])

      // --nodes from another working directory, as the stack's retention command runs it.
      const elsewhere = makeTempDir()
      const run = runMuster(['packer:retain', 'web', '--keep', '2', '--nodes', join(dir, 'nodes.json')], {cwd: elsewhere, env: moto.env})
      removeDir(elsewhere)
      expect(run.code, run.stderr).to.equal(0)
      const lines = run.stdout.trimEnd().split('\n')
      expect(lines).to.have.length(6)
      expect(lines[0]).to.match(new RegExp(`^web\\s+kept\\s+${at(seeded.web, 5)}\\s+web-6\\s+\\S+\\s+among the newest 2$`))
      expect(lines[2]).to.match(new RegExp(`^web\\s+kept\\s+${at(seeded.web, 0)}\\s+web-1\\s+\\S+\\s+in use; used by instance i-\\w+ \\(running\\)$`))
      expect(lines[3]).to.match(new RegExp(`^web\\s+removed\\s+${at(seeded.web, 3)}\\s+web-4\\s+\\S+\\s+older than the newest 2; snapshots snap-\\w+$`))
      expect(run.stderr).to.include('web: 3 kept, 3 deregistered, 3 snapshots deleted')
      expect(`${run.stdout}${run.stderr}`).to.not.include('testing')
      expect(await imageIds(ec2)).to.deep.equal([at(seeded.web, 0), at(seeded.web, 4), at(seeded.web, 5), seeded.db].sort())
    })

    it('packer:clean --dry-run lists every baked group and changes nothing', async () => {
      const seeded = await seedImages(moto, ec2)
      const images = await imageIds(ec2)
      const dry = runMuster(['packer:clean', '-n', '1', '--dry-run'], {cwd: dir, env: moto.env})
      expect(dry.code, dry.stderr).to.equal(0)
      const lines = dry.stdout.trimEnd().split('\n')
      expect(lines.filter((l) => /^web\s+would remove/.test(l))).to.have.length(5)
      expect(lines.filter((l) => /^web\s+kept/.test(l))).to.have.length(1)
      const dbLines = lines.filter((l) => l.startsWith('db'))
      expect(dbLines).to.have.length(1)
      expect(dbLines[0]).to.match(new RegExp(`^db\\s+kept\\s+${seeded.db}\\s+db-1\\s+\\S+\\s+among the newest 1$`))
      expect(lines.some((l) => l.startsWith('static'))).to.equal(false)
      expect(dry.stderr).to.include('web: 1 kept, 5 would be removed (with 5 snapshots); dry run, nothing changed')
      expect(await imageIds(ec2)).to.deep.equal(images)
    })

    it('a user error, not a bug, when AWS cannot be reached', () => {
      const result = runMuster(['packer:retain', 'web', '--keep', '2'], {cwd: dir, env: {...moto.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1'}})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.include('cannot reach AWS while listing the images of group web in us-east-1')
      expect(result.stderr).to.include('AWS_ENDPOINT_URL is http://127.0.0.1:9')
      expect(result.stderr).to.not.include('looks like a bug')
    })
  })
})

