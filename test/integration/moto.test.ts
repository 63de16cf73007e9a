import {
  CreateImageCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Image,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2'
import {expect} from 'chai'

import {requireTool} from '../support/integration.js'
import {DEFAULT_SOURCE_IMAGE, motoEc2, type MotoServer, registerImage, startMoto} from '../support/moto.js'

function snapshotIdsOf(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []))
}

describe('moto server (EC2 images)', function () {
  this.timeout(60_000)
  let moto: MotoServer
  let ec2: EC2Client

  before(async function () {
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    moto = await startMoto()
    ec2 = motoEc2(moto)
  })

  after(async function () {
    ec2?.destroy()
    await moto?.stop()
  })

  beforeEach(async function () {
    await moto.reset()
  })

  it('starts with only the seeded source image, which survives a reset', async function () {
    const {Images} = await ec2.send(new DescribeImagesCommand({}))
    expect((Images ?? []).map((i) => i.ImageId)).to.deep.equal([DEFAULT_SOURCE_IMAGE.id])
    const source = Images?.[0]
    expect(source?.RootDeviceType).to.equal('ebs')
    expect(source?.VirtualizationType).to.equal('hvm')
    expect(source?.Name).to.equal(DEFAULT_SOURCE_IMAGE.name)
  })

  it('registers and creates images with tags, and describes them by tag and by owner', async function () {
    const registered = await registerImage(moto, {
      name: 'web-20260101-0000',
      tags: {'muster:role': 'web', 'muster:build': '1'},
    })
    const {Instances} = await ec2.send(
      new RunInstancesCommand({ImageId: DEFAULT_SOURCE_IMAGE.id, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro'}),
    )
    const instanceId = Instances?.[0]?.InstanceId
    expect(instanceId).to.match(/^i-/)
    const {ImageId: created} = await ec2.send(
      new CreateImageCommand({
        InstanceId: instanceId,
        Name: 'web-20260102-0000',
        TagSpecifications: [
          {ResourceType: 'image', Tags: [{Key: 'muster:role', Value: 'web'}, {Key: 'muster:build', Value: '2'}]},
        ],
      }),
    )
    expect(created).to.match(/^ami-/)
    await registerImage(moto, {name: 'db-20260101-0000', tags: {'muster:role': 'db'}})

    const byTag = await ec2.send(new DescribeImagesCommand({Filters: [{Name: 'tag:muster:role', Values: ['web']}]}))
    expect((byTag.Images ?? []).map((i) => i.ImageId).sort()).to.deep.equal([registered, created].sort())
    const build2 = byTag.Images?.find((i) => i.ImageId === created)
    expect(build2?.Tags).to.deep.include({Key: 'muster:build', Value: '2'})

    const mine = await ec2.send(new DescribeImagesCommand({Owners: ['self']}))
    expect(mine.Images).to.have.length(3)
    expect(mine.Images?.every((i) => i.OwnerId === moto.accountId)).to.equal(true)

    const byAccount = await ec2.send(new DescribeImagesCommand({Owners: [moto.accountId]}))
    expect(byAccount.Images).to.have.length(3)
    const byOwnerFilter = await ec2.send(
      new DescribeImagesCommand({Owners: [DEFAULT_SOURCE_IMAGE.ownerId ?? '']}),
    )
    expect((byOwnerFilter.Images ?? []).map((i) => i.ImageId)).to.deep.equal([DEFAULT_SOURCE_IMAGE.id])
  })

  it('deregisters an image and deletes its snapshots', async function () {
    const imageId = await registerImage(moto, {name: 'web-old', tags: {'muster:role': 'web'}})
    const {Images} = await ec2.send(new DescribeImagesCommand({ImageIds: [imageId]}))
    const snapshots = snapshotIdsOf(Images?.[0] ?? {})
    expect(snapshots).to.have.length(1)

    // AWS refuses to delete a snapshot an image still uses; moto enforces the same order.
    let refused = false
    try {
      await ec2.send(new DeleteSnapshotCommand({SnapshotId: snapshots[0]}))
    } catch (error) {
      refused = true
      expect(String(error)).to.match(/in use|InvalidSnapshot\.InUse/i)
    }
    expect(refused, 'deleting a snapshot in use should fail').to.equal(true)

    await ec2.send(new DeregisterImageCommand({ImageId: imageId}))
    for (const snapshotId of snapshots) await ec2.send(new DeleteSnapshotCommand({SnapshotId: snapshotId}))

    const after = await ec2.send(new DescribeImagesCommand({Filters: [{Name: 'tag:muster:role', Values: ['web']}]}))
    expect(after.Images).to.deep.equal([])
    const left = await ec2.send(new DescribeSnapshotsCommand({OwnerIds: ['self']}))
    expect((left.Snapshots ?? []).map((s) => s.SnapshotId)).to.not.include.members(snapshots)
  })
})
