import {expect} from 'chai'

import {readFileSync} from 'node:fs'

import {renderDna} from '../../src/artifacts/dna.js'
import {renderRole} from '../../src/artifacts/role.js'
import {renderUserData, USER_DATA_TEMPLATE} from '../../src/artifacts/userdata.js'
import {UserError} from '../../src/errors.js'
import type {Group} from '../../src/nodes/model.js'
import {asgName, Fleet, MIN_HEALTHY_PERCENTAGE} from '../../src/stacks/fleet.js'
import {type Account, ASG, BASE, CUSTOM_VPC, DEFAULT_VPC, groupOf, LT, mockAccount, valueOf} from './mocks.js'

const template = readFileSync(USER_DATA_TEMPLATE, 'utf8')

const bee = groupOf(
  {
    __base__: {...BASE, security_groups: ['external', 'internal'], tags: {team: 'core', group: 'not-this'}},
    '12_04-bee': {autoscale: {timeout: 120, node_min: 2, node_max: 4}, security_groups: ['bee', 'sg-0abc123'], volume_size: 30},
  },
  '12_04-bee',
)
const www = groupOf({__base__: BASE, www: {autoscale: {timeout: 90.5, node_min: 1, node_max: 3}, subnets: ['subnet-aaa', 'subnet-bbb']}}, 'www')
const oneOff = groupOf({__base__: BASE, solo: {autoscale: false}}, 'solo')

type Tag = {key: string; value: string; propagateAtLaunch: boolean}
type Obj = Record<string, unknown>
const obj = (value: unknown): Obj => value as Obj

async function deploy(account: Account, group: Group, generations?: number[]): Promise<Fleet> {
  const fleet = new Fleet('fleet', {group, imageId: 'ami-baked1', userData: renderUserData(template, group), generations}, account.record)
  // Every ASG registered (they depend on the launch template, so it is registered too).
  await valueOf(fleet.asgNames)
  return fleet
}

describe('Fleet (mocks)', () => {
  let account: Account
  beforeEach(async () => {
    account = await mockAccount()
  })

  it('creates one launch template and one ASG, and outputs their ids, version and name', async () => {
    const fleet = await deploy(account, bee)
    expect(account.byType(LT)).to.have.length(1)
    expect(account.byType(ASG)).to.have.length(1)
    expect(await valueOf(fleet.launchTemplateId)).to.equal('launch-template-id')
    expect(await valueOf(fleet.launchTemplateVersion)).to.equal(7)
    expect(await valueOf(fleet.asgName)).to.equal('12_04-bee')
    expect(await valueOf(fleet.asgNames)).to.deep.equal(['12_04-bee'])
  })

  it('launch template: image, type, IMDSv2 required, encrypted gp3 root on the AMI root device, default version', async () => {
    await deploy(account, bee)
    const lt = account.one(LT).inputs
    expect(lt.imageId).to.equal('ami-baked1')
    expect(lt.instanceType).to.equal('m5.large')
    expect(lt.region).to.equal('us-east-1')
    expect(lt.namePrefix).to.equal('12_04-bee-')
    expect(lt.updateDefaultVersion).to.equal(true)
    expect(lt.metadataOptions).to.deep.include({httpTokens: 'required', httpEndpoint: 'enabled', httpPutResponseHopLimit: 1})
    expect(lt.blockDeviceMappings).to.deep.equal([{deviceName: '/dev/sda1', ebs: {encrypted: 'true', volumeType: 'gp3', deleteOnTermination: 'true', volumeSize: 30}}])
    const ami = account.callsOf('aws:ec2/getAmi:getAmi')[0]
    expect(obj(ami?.inputs).filters).to.deep.equal([{name: 'image-id', values: ['ami-baked1']}])
  })

  it('leaves the root volume size to the AMI when the group has no volume_size', async () => {
    await deploy(account, www)
    const mapping = (account.one(LT).inputs.blockDeviceMappings as Obj[])[0]
    expect(obj(mapping?.ebs)).not.to.have.property('volumeSize')
    expect(obj(mapping?.ebs).encrypted).to.equal('true')
  })

  it('launch template: user data is the base64 of the rendered script, with the role and dna and no credentials', async () => {
    await deploy(account, bee)
    const text = Buffer.from(String(account.one(LT).inputs.userData), 'base64').toString('utf8')
    expect(text).to.equal(renderUserData(template, bee))
    expect(text).to.include(renderRole(bee).trimEnd())
    expect(text).to.include(renderDna(bee).trimEnd())
    expect(text).not.to.match(/AKIA|ASIA[0-9A-Z]{16}|aws_secret_access_key|aws_session_token|PRIVATE KEY/i)
  })

  it('launch template: tags instances and volumes with the group tags, Name, group and muster:group (muster wins)', async () => {
    await deploy(account, bee)
    const lt = account.one(LT).inputs
    const expected = {team: 'core', group: '12_04-bee', Name: '12_04-bee', 'muster:group': '12_04-bee'}
    expect(lt.tagSpecifications).to.deep.equal([
      {resourceType: 'instance', tags: expected},
      {resourceType: 'volume', tags: expected},
    ])
    expect(lt.tags).to.deep.equal({team: 'core', group: '12_04-bee', 'muster:group': '12_04-bee'})
  })

  it('default VPC: security groups looked up by name there (ids kept), subnets are its default subnets, sorted', async () => {
    await deploy(account, bee)
    expect(account.callsOf('aws:ec2/getVpc:getVpc').map((c) => obj(c.inputs))).to.deep.equal([{default: true, region: 'us-east-1'}])
    const sgCalls = account.callsOf('aws:ec2/getSecurityGroup:getSecurityGroup').map((c) => obj(c.inputs))
    expect(sgCalls.map((c) => c.name).sort()).to.deep.equal(['bee', 'external', 'internal'])
    expect(sgCalls.every((c) => c.vpcId === DEFAULT_VPC && c.region === 'us-east-1')).to.equal(true)
    expect(account.one(LT).inputs.vpcSecurityGroupIds).to.deep.equal([
      `sg-external-in-${DEFAULT_VPC}`,
      `sg-internal-in-${DEFAULT_VPC}`,
      `sg-bee-in-${DEFAULT_VPC}`,
      'sg-0abc123',
    ])
    const subnetsCall = account.callsOf('aws:ec2/getSubnets:getSubnets')[0]
    expect(obj(subnetsCall?.inputs).filters).to.deep.equal([
      {name: 'vpc-id', values: [DEFAULT_VPC]},
      {name: 'default-for-az', values: ['true']},
    ])
    expect(account.one(ASG).inputs.vpcZoneIdentifiers).to.deep.equal(['subnet-def-a', 'subnet-def-b'])
  })

  it('named subnets: used as given, security groups looked up in their VPC, no default-VPC look-up', async () => {
    await deploy(account, www)
    expect(account.one(ASG).inputs.vpcZoneIdentifiers).to.deep.equal(['subnet-aaa', 'subnet-bbb'])
    expect(account.callsOf('aws:ec2/getVpc:getVpc')).to.have.length(0)
    expect(account.callsOf('aws:ec2/getSubnets:getSubnets')).to.have.length(0)
    expect(obj(account.callsOf('aws:ec2/getSubnet:getSubnet')[0]?.inputs).id).to.equal('subnet-aaa')
    expect(account.one(LT).inputs.vpcSecurityGroupIds).to.deep.equal([`sg-internal-in-${CUSTOM_VPC}`])
  })

  it('ASG: min/max from autoscale, desired = min, the latest template version, EC2 health check with the timeout as grace', async () => {
    await deploy(account, bee)
    const asg = account.one(ASG).inputs
    expect(asg).to.deep.include({name: '12_04-bee', minSize: 2, maxSize: 4, desiredCapacity: 2, healthCheckType: 'EC2', healthCheckGracePeriod: 120, defaultInstanceWarmup: 120})
    expect(asg.launchTemplate).to.deep.equal({id: 'launch-template-id', version: '7'})
    expect(asg.terminationPolicies).to.deep.equal(['OldestLaunchTemplate', 'OldestInstance'])
    expect(asg.waitForCapacityTimeout).to.equal('10m')
    expect(asg.region).to.equal('us-east-1')
  })

  it('ASG: rolling instance refresh, 90% healthy, warm-up from autoscale.timeout (rounded up to whole seconds)', async () => {
    await deploy(account, www)
    const asg = account.one(ASG).inputs
    expect(asg.healthCheckGracePeriod).to.equal(91)
    expect(asg.instanceRefresh).to.deep.equal({
      strategy: 'Rolling',
      preferences: {minHealthyPercentage: MIN_HEALTHY_PERCENTAGE, maxHealthyPercentage: 100, instanceWarmup: '91', skipMatching: true},
    })
    expect(MIN_HEALTHY_PERCENTAGE).to.equal(90)
  })

  it('ASG: tags group=GROUP (the paper’s group:GROUP), muster:group, Name, generation and the group tags, all propagated', async () => {
    await deploy(account, bee)
    const tags = account.one(ASG).inputs.tags as Tag[]
    expect(tags).to.deep.equal([
      {key: 'Name', value: '12_04-bee', propagateAtLaunch: true},
      {key: 'group', value: '12_04-bee', propagateAtLaunch: true},
      {key: 'muster:generation', value: '0', propagateAtLaunch: true},
      {key: 'muster:group', value: '12_04-bee', propagateAtLaunch: true},
      {key: 'team', value: 'core', propagateAtLaunch: true},
    ])
  })

  it('a fixed ASG name is freed before a replacement; the live generation follows every change', async () => {
    await deploy(account, bee)
    const opts = account.options.get('asg')
    expect(opts?.deleteBeforeReplace).to.equal(true)
    expect(opts?.ignoreChanges ?? []).to.deep.equal([])
  })

  it('blue-green: holds the old and the new generation at once; the old one is frozen, the new one is live', async () => {
    const fleet = await deploy(account, bee, [3, 2])
    const asgs = account.byType(ASG)
    expect(asgs.map((a) => a.name).sort()).to.deep.equal(['asg-g2', 'asg-g3'])
    expect(asgs.map((a) => a.inputs.name).sort()).to.deep.equal(['12_04-bee-g2', '12_04-bee-g3'])
    expect(account.byType(LT)).to.have.length(1)
    expect(await valueOf(fleet.asgName)).to.equal('12_04-bee-g3')
    expect(await valueOf(fleet.asgNames)).to.deep.equal(['12_04-bee-g2', '12_04-bee-g3'])
    expect(account.options.get('asg-g2')?.ignoreChanges).to.deep.equal(['launchTemplate', 'minSize', 'maxSize', 'desiredCapacity'])
    expect(account.options.get('asg-g3')?.ignoreChanges ?? []).to.deep.equal([])
    const generationTag = (name: string): string | undefined =>
      (account.one(ASG, name).inputs.tags as Tag[]).find((t) => t.key === 'muster:generation')?.value
    expect([generationTag('asg-g2'), generationTag('asg-g3')]).to.deep.equal(['2', '3'])
  })

  it('blue-green names: generation 0 is the plain group name, later ones get -gN', () => {
    expect(asgName('12_04-bee', 0)).to.equal('12_04-bee')
    expect(asgName('12_04-bee', 4)).to.equal('12_04-bee-g4')
  })

  it('refuses a group with autoscale: false, before registering anything', () => {
    expect(() => new Fleet('fleet', {group: oneOff, imageId: 'ami-1', userData: ''})).to.throw(UserError, /autoscale: false/)
    expect(account.resources).to.have.length(0)
  })

  it('refuses node_min above node_max, and bad generations', () => {
    const bad = {...bee, autoscale: {timeout: 60, node_min: 3, node_max: 1}}
    expect(() => new Fleet('fleet', {group: bad, imageId: 'ami-1', userData: ''})).to.throw(UserError, /node_min 3 above node_max 1/)
    expect(() => new Fleet('fleet', {group: bee, imageId: 'ami-1', userData: '', generations: []})).to.throw(/at least one generation/)
    expect(() => new Fleet('fleet', {group: bee, imageId: 'ami-1', userData: '', generations: [1, 1]})).to.throw(/repeat/)
    expect(() => new Fleet('fleet', {group: bee, imageId: 'ami-1', userData: '', generations: [-1]})).to.throw(/whole number/)
  })
})
