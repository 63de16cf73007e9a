import {expect} from 'chai'

import {readFileSync} from 'node:fs'

import {renderUserData, USER_DATA_TEMPLATE} from '../../src/artifacts/userdata.js'
import {UserError} from '../../src/errors.js'
import type {Group} from '../../src/nodes/model.js'
import {FIXED_AT_LAUNCH, Instances, subnetInZone} from '../../src/stacks/instances.js'
import type {InstanceIntent} from '../../src/stacks/intent.js'
import {type Account, BASE, CUSTOM_VPC, DEFAULT_VPC, groupOf, INSTANCE, KEY_PAIR, mockAccount, valueOf} from './mocks.js'

const template = readFileSync(USER_DATA_TEMPLATE, 'utf8')
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmU7Gmqa1uBRHmvN5V7f4qyiBgV3E3cZ7hNuV8bYQ5n'

const www = groupOf({__base__: {...BASE, tags: {team: 'web'}}, www: {volume_size: 20}}, 'www')
const placed = groupOf({__base__: BASE, www: {subnets: ['subnet-aaa', 'subnet-bbb', 'subnet-ccc']}}, 'www')

type Obj = Record<string, unknown>

async function deploy(account: Account, group: Group, instances: InstanceIntent[], userData: string | ((i: InstanceIntent) => string) = renderUserData(template, group)): Promise<Instances> {
  const component = new Instances('instances', {group, instances, imageId: 'ami-baked1', userData}, account.record)
  await valueOf(component.instances)
  return component
}

describe('Instances (mocks)', () => {
  let account: Account
  beforeEach(async () => {
    account = await mockAccount()
  })

  it('one instance per intent: zone, type, IMDSv2 required, encrypted gp3 root, user data, tags', async () => {
    await deploy(account, www, [{name: 'admin', zone: 'us-east-1c'}])
    const instance = account.one(INSTANCE, 'instance-admin').inputs
    expect(instance).to.deep.include({ami: 'ami-baked1', instanceType: 'm5.large', availabilityZone: 'us-east-1c', region: 'us-east-1'})
    expect(instance).not.to.have.property('subnetId')
    expect(instance).not.to.have.property('keyName')
    expect(instance.metadataOptions).to.deep.include({httpTokens: 'required', httpEndpoint: 'enabled', httpPutResponseHopLimit: 1})
    const tags = {team: 'web', Name: 'www-admin', group: 'www', 'muster:group': 'www'}
    expect(instance.rootBlockDevice).to.deep.equal({encrypted: true, volumeType: 'gp3', deleteOnTermination: true, volumeSize: 20, tags})
    expect(instance.tags).to.deep.equal(tags)
    expect(instance.userData).to.equal(renderUserData(template, www))
    expect(String(instance.userData)).not.to.match(/AKIA|aws_secret_access_key|PRIVATE KEY/i)
    expect(instance.vpcSecurityGroupIds).to.deep.equal([`sg-internal-in-${DEFAULT_VPC}`])
    expect(account.byType(KEY_PAIR)).to.have.length(0)
  })

  it('imports a key pair named muster-GROUP-NAME when a public key is given, and launches with it', async () => {
    await deploy(account, www, [
      {name: 'admin', zone: 'us-east-1a', publicKey: PUBLIC_KEY},
      {name: 'batch', zone: 'us-east-1b'},
    ])
    const key = account.one(KEY_PAIR).inputs
    expect(key).to.deep.include({keyName: 'muster-www-admin', publicKey: PUBLIC_KEY, region: 'us-east-1'})
    expect(account.one(KEY_PAIR).name).to.equal('key-admin')
    expect(account.one(INSTANCE, 'instance-admin').inputs.keyName).to.equal('muster-www-admin')
    expect(account.one(INSTANCE, 'instance-batch').inputs).not.to.have.property('keyName')
    expect(account.options.get('key-admin')?.deleteBeforeReplace).to.equal(true)
  })

  it('outputs name, id, zone and addresses of every instance, in intent order', async () => {
    const component = await deploy(account, www, [
      {name: 'b', zone: 'us-east-1b'},
      {name: 'a', zone: 'us-east-1a'},
    ])
    const outputs = await valueOf(component.instances)
    expect(outputs.map(({name, id, zone}) => ({name, id, zone}))).to.deep.equal([
      {name: 'b', id: 'instance-b-id', zone: 'us-east-1b'},
      {name: 'a', id: 'instance-a-id', zone: 'us-east-1a'},
    ])
    // The mock hands out addresses in registration order, which Pulumi does not promise to keep.
    for (const output of outputs) {
      expect(output.privateIp).to.match(/^10\.0\.0\.\d$/)
      expect(output.publicIp).to.equal(output.privateIp.replace('10.0.0.', '203.0.113.'))
    }
  })

  it('names resources after the instance, so adding one leaves the others as they were', async () => {
    await deploy(account, www, [{name: 'a', zone: 'us-east-1a', publicKey: PUBLIC_KEY}])
    const before = account.resources.map((r) => ({type: r.type, name: r.name, inputs: r.inputs}))
    const second = await mockAccount()
    await deploy(second, www, [
      {name: 'new', zone: 'us-east-1b'},
      {name: 'a', zone: 'us-east-1a', publicKey: PUBLIC_KEY},
    ])
    for (const resource of before) {
      expect(second.one(resource.type, resource.name).inputs).to.deep.equal(resource.inputs)
    }
    expect(second.byType(INSTANCE).map((r) => r.name).sort()).to.deep.equal(['instance-a', 'instance-new'])
  })

  it('fixes AMI, user data and key at launch, so a new bake or role does not replace one-off instances', async () => {
    await deploy(account, www, [{name: 'a', zone: 'us-east-1a'}])
    expect(account.options.get('instance-a')?.ignoreChanges).to.deep.equal(FIXED_AT_LAUNCH)
    expect(FIXED_AT_LAUNCH).to.include.members(['ami', 'userData', 'keyName'])
  })

  it('gives each instance its own user data when asked (e.g. its own dna id)', async () => {
    await deploy(account, www, [{name: 'a', zone: 'us-east-1a'}], (intent) => renderUserData(template, www, {dnaId: `www-${intent.name}`}))
    expect(account.one(INSTANCE).inputs.userData).to.include('"id": "www-a"')
  })

  it('named subnets: launches in the group subnet of the zone, security groups from that VPC', async () => {
    await deploy(account, placed, [
      {name: 'a', zone: 'us-east-1a'},
      {name: 'b', zone: 'us-east-1b'},
    ])
    expect(account.one(INSTANCE, 'instance-a').inputs.subnetId).to.equal('subnet-aaa')
    // Two of the group's subnets are in us-east-1b: the first by id, so the choice is stable.
    expect(account.one(INSTANCE, 'instance-b').inputs.subnetId).to.equal('subnet-bbb')
    expect(account.one(INSTANCE, 'instance-a').inputs.vpcSecurityGroupIds).to.deep.equal([`sg-internal-in-${CUSTOM_VPC}`])
    const filters = account.callsOf('aws:ec2/getSubnets:getSubnets').map((c) => (c.inputs as Obj).filters)
    expect(filters).to.deep.include([
      {name: 'subnet-id', values: ['subnet-aaa', 'subnet-bbb', 'subnet-ccc']},
      {name: 'availability-zone', values: ['us-east-1a']},
    ])
  })

  it('refuses a zone where the group has no subnet, naming its subnets', () => {
    expect(subnetInZone(placed, 'us-east-1b', ['subnet-ccc', 'subnet-bbb'])).to.equal('subnet-bbb')
    expect(() => subnetInZone(placed, 'us-east-1c', [])).to.throw(UserError, /no subnet in us-east-1c/)
  })

  it('refuses duplicate and unusable instance names before registering anything', () => {
    const make = (instances: InstanceIntent[]) => () => new Instances('instances', {group: www, instances, imageId: 'ami-1', userData: ''})
    expect(make([{name: 'a', zone: 'z'}, {name: 'a', zone: 'z'}])).to.throw(UserError, /two instances named a/)
    expect(make([{name: 'has space', zone: 'z'}])).to.throw(UserError, /not usable/)
    expect(make([{name: '-lead', zone: 'z'}])).to.throw(UserError, /not usable/)
    expect(account.resources).to.have.length(0)
  })

  it('creates nothing for no instances', async () => {
    const component = await deploy(account, www, [])
    expect(await valueOf(component.instances)).to.deep.equal([])
    expect(account.byType(INSTANCE)).to.have.length(0)
  })
})

