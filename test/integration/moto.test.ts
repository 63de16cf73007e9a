// Component proof: the moto server the AWS suites (retention, retire, bake, stacks) run against
// starts, answers EC2, and keeps its seeded source image across a reset. What muster does with
// images (tag filters, owners, deregistering before deleting snapshots) is tested through muster's
// own image store in retention.test.ts.
import {DescribeImagesCommand, type EC2Client} from '@aws-sdk/client-ec2'
import {expect} from 'chai'

import {requireTool} from '../support/integration.js'
import {DEFAULT_SOURCE_IMAGE, motoEc2, type MotoServer, registerImage, startMoto} from '../support/moto.js'

describe('moto server (component)', function () {
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

  it('answers EC2 with the seeded source image, which survives a reset; registered images carry their tags', async function () {
    const imageId = await registerImage(moto, {name: 'web-1', tags: {'muster:group': 'web'}})
    const registered = await ec2.send(new DescribeImagesCommand({ImageIds: [imageId]}))
    expect(registered.Images?.[0]?.Tags).to.deep.include({Key: 'muster:group', Value: 'web'})
    expect(registered.Images?.[0]?.OwnerId).to.equal(moto.accountId)

    await moto.reset()
    const {Images} = await ec2.send(new DescribeImagesCommand({}))
    expect((Images ?? []).map((i) => i.ImageId)).to.deep.equal([DEFAULT_SOURCE_IMAGE.id])
    expect(Images?.[0]?.Name).to.equal(DEFAULT_SOURCE_IMAGE.name)
    expect(Images?.[0]?.RootDeviceType).to.equal('ebs')
  })
})
