// The group program factory under pulumi mocks: which parts exist for which intent, and what
// the bake and retention commands carry (nothing machine-specific, the right triggers).
import * as pulumi from '@pulumi/pulumi'
import {expect} from 'chai'

import {renderDna} from '../../src/artifacts/dna.js'
import {renderRole} from '../../src/artifacts/role.js'
import {emptyIntent, type Intent} from '../../src/stacks/intent.js'
import {groupProgram, type ProgramContext} from '../../src/stacks/program.js'
import {groupOf, valueOf} from './mocks.js'

interface Seen {
  type: string
  name: string
  inputs: Record<string, unknown>
}

const COMMAND = 'pulumi-nodejs:dynamic/muster:ShellCommand'
const BAKED_AMI = 'ami-0000baked'
const LOOKED_UP_AMI = 'ami-0000newest'

async function run(intent: Intent, groupValue: Record<string, unknown> = {}, bakeExtra: {agentSha256?: string} = {}, environment?: string): Promise<{seen: Seen[]; calls: pulumi.runtime.MockCallArgs[]; outputs: Record<string, unknown>}> {
  const seen: Seen[] = []
  const calls: pulumi.runtime.MockCallArgs[] = []
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        seen.push({type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown>})
        const state: Record<string, unknown> = {...(args.inputs as Record<string, unknown>)}
        if (args.type === COMMAND && args.name === 'packer-build') state.stdout = `${BAKED_AMI}\n`
        if (args.type === 'aws:ec2/launchTemplate:LaunchTemplate') state.latestVersion = 1
        return {id: `${args.name}-id`, state}
      },
      call(args) {
        calls.push(args)
        const inputs = args.inputs as {filters?: Array<{name: string; values: string[]}>}
        if (args.token === 'aws:ec2/getAmi:getAmi') {
          const byId = inputs.filters?.find((f) => f.name === 'image-id')?.values[0]
          return {id: byId ?? LOOKED_UP_AMI, rootDeviceName: '/dev/sda1'}
        }
        if (args.token === 'aws:ec2/getVpc:getVpc') return {id: 'vpc-1'}
        if (args.token === 'aws:ec2/getSubnets:getSubnets') return {ids: ['subnet-a']}
        if (args.token === 'aws:ec2/getSecurityGroup:getSecurityGroup') return {id: 'sg-1'}
        throw new Error(`unexpected call ${args.token}`)
      },
    },
    'muster',
    'web',
  )
  const group = groupOf(
    {__base__: {region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-0123abcd', security_groups: ['web'], autoscale: {timeout: 60, node_min: 1, node_max: 2}}, web: groupValue},
    'web',
  )
  // As the group resolved in an environment (only its name reaches the program).
  if (environment !== undefined) group.environment = environment
  const ctx: ProgramContext = {
    group,
    intent,
    nodesPath: 'nodes.json',
    project: 'alpha',
    roleText: renderRole(group),
    dnaText: renderDna(group),
    ...(group.packer === false ? {} : {bake: {templatePath: 'packer/web.pkr.json', templateHash: 'th1', cookbooksHash: 'ch1', ...(group.from_base ? {baseImage: 'ami-base1'} : {}), ...bakeExtra}}),
    userDataTemplate: '#!/bin/sh\necho {{group}}\n',
  }
  const raw = (await groupProgram(ctx)()) as Record<string, unknown>
  // Registrations finish asynchronously; wait until none has come for a while.
  for (let count = -1; count !== seen.length; ) {
    count = seen.length
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const outputs: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(raw)) outputs[key] = pulumi.Output.isInstance(value) ? await valueOf(value as pulumi.Output<unknown>) : value
  return {seen, calls, outputs}
}

const named = (seen: Seen[], type: string, name: string): Seen | undefined => seen.find((s) => s.type === type && s.name === name)

describe('group program in an environment', () => {
  const pinned = {id: 'ami-0000promoted', from: 'staging', sourceId: 'ami-0000staging', sourceRegion: 'us-west-2', promotedAt: '2026-11-26T01:00:00.000Z'}

  it('a pinned image replaces the bake: no packer-build, the ami output is the pinned image, and the fleet launches it', async () => {
    const {seen, outputs, calls} = await run({...emptyIntent(), bake: true, fleet: true, image: pinned}, {}, {}, 'production')
    expect(named(seen, COMMAND, 'packer-build')).to.equal(undefined)
    expect(named(seen, COMMAND, 'retain')).to.equal(undefined)
    expect(outputs.ami).to.equal('ami-0000promoted')
    expect(outputs.promotedFrom).to.deep.equal({environment: 'staging', image: 'ami-0000staging', region: 'us-west-2'})
    const lt = seen.find((r) => r.type === 'aws:ec2/launchTemplate:LaunchTemplate')
    expect(lt?.inputs.imageId).to.equal('ami-0000promoted')
    expect(lt?.inputs.namePrefix).to.equal('web.production-')
    expect(lt?.inputs.tags).to.deep.include({'muster:environment': 'production', 'muster:group': 'web'})
    const asg = seen.find((r) => r.type === 'aws:autoscaling/group:Group')
    expect(asg?.inputs.name).to.equal('web.production')
    expect(asg?.inputs.tags).to.deep.include({key: 'muster:environment', value: 'production', propagateAtLaunch: true})
    expect(asg?.inputs.tags).to.deep.include({key: 'Name', value: 'web.production', propagateAtLaunch: true})
    // No look-up of the newest baked image: the pinned one is used as it is.
    expect(calls.filter((c) => c.token === 'aws:ec2/getAmi:getAmi').every((c) => JSON.stringify(c.inputs).includes('image-id'))).to.equal(true)
  })

  it("the bake's and retention's commands name the environment, and their logs are the environment's own", async () => {
    const {seen} = await run({...emptyIntent(), bake: true, keep: 3}, {}, {}, 'staging')
    const build = named(seen, COMMAND, 'packer-build')
    const create = String(build?.inputs.create)
    expect(create).to.include(`packer:ami 'web' --nodes 'nodes.json' --env 'staging'`)
    expect(create).to.include(`packer:orphan 'web' --nodes 'nodes.json' --env 'staging'`)
    expect(create).to.include(`mkdir -p '.muster/manifests'`)
    expect(build?.inputs.log).to.equal('.muster/logs/web.staging-bake.log')
    const retain = named(seen, COMMAND, 'retain')
    expect(String(retain?.inputs.create)).to.include("packer:retain 'web' --keep 3 --nodes 'nodes.json' --env 'staging'")
  })

  it('without an environment the fleet keeps its names', async () => {
    const {seen} = await run({...emptyIntent(), fleet: true})
    const asg = seen.find((r) => r.type === 'aws:autoscaling/group:Group')
    expect(asg?.inputs.name).to.equal('web')
    expect(JSON.stringify(asg?.inputs.tags)).not.to.include('muster:environment')
  })
})

describe('group program', () => {
  it('an empty intent makes no resource and still outputs the role and dna', async () => {
    const {seen, outputs} = await run(emptyIntent())
    expect(seen).to.deep.equal([])
    expect(outputs.role).to.include('"name": "role-web"')
    expect(outputs.dna).to.include('"role[role-web]"')
  })

  it('bake: packer build with the hashes as triggers, nothing machine-specific, AMI id as output, retention after it', async () => {
    const {seen, outputs} = await run({...emptyIntent(), bake: true, keep: 4})
    const build = named(seen, COMMAND, 'packer-build')
    expect(build, 'packer-build').to.not.equal(undefined)
    expect(build?.inputs.triggers).to.deep.equal(['th1', 'ch1'])
    const create = String(build?.inputs.create)
    // The cookbooks hash reaches the image's tag through a Packer variable.
    expect(create).to.include("build -color=false -var 'cookbooks_hash=ch1' 'packer/web.pkr.json'")
    expect(create).to.include(`"$MUSTER_NODE" "$MUSTER_BIN" packer:ami 'web' --nodes 'nodes.json'`)
    expect(create).to.not.match(/\/(root|home|tmp|work)\//)
    expect(build?.inputs.log).to.equal('.muster/logs/web-bake.log')
    // The serialised provider lands in shared state: no path of this machine in it either.
    expect(String(build?.inputs.__provider)).to.not.match(/\/(root|home|work)\//)
    expect(outputs.ami).to.equal(BAKED_AMI)
    const retain = named(seen, COMMAND, 'retain')
    expect(String(retain?.inputs.create)).to.include("packer:retain 'web' --keep 4")
    expect(retain?.inputs.triggers).to.deep.equal([BAKED_AMI, '4', ''])
    expect(named(seen, 'muster:stack:Bake', 'bake')).to.not.equal(undefined)
  })

  it('a from_base group has the base image among its bake triggers: a new base image rebakes it', async () => {
    const {seen} = await run({...emptyIntent(), bake: true}, {from_base: true})
    expect(named(seen, COMMAND, 'packer-build')?.inputs.triggers).to.deep.equal(['th1', 'ch1', 'ami-base1'])
  })

  it('a bake that installs the agent passes the bundle\'s sha256 to Packer and has it among its triggers: a new agent rebakes', async () => {
    const sha = 'ab'.repeat(32)
    const {seen} = await run({...emptyIntent(), bake: true}, {}, {agentSha256: sha})
    const build = named(seen, COMMAND, 'packer-build')
    expect(build?.inputs.triggers).to.deep.equal(['th1', 'ch1', `agent:${sha}`])
    expect(String(build?.inputs.create)).to.include(`build -color=false -var 'cookbooks_hash=ch1' -var 'agent_sha256=${sha}' 'packer/web.pkr.json'`)
    // An orphan image is not adopted: nothing on it says which agent it carries.
    expect(String(build?.inputs.create)).not.to.include('packer:orphan')
  })

  it('packer:clean alone records a retention run without a bake', async () => {
    const {seen} = await run({...emptyIntent(), keep: 2, cleanedAt: '2026-11-25T10:00:00.000Z'})
    expect(named(seen, COMMAND, 'packer-build')).to.equal(undefined)
    expect(named(seen, COMMAND, 'retain')?.inputs.triggers).to.deep.equal(['', '2', '2026-11-25T10:00:00.000Z'])
  })

  it('fleet without a bake in this stack boots the newest baked AMI, looked up by tag in the group\'s region', async () => {
    const {seen, calls, outputs} = await run({...emptyIntent(), fleet: true})
    const lookup = calls.find((c) => c.token === 'aws:ec2/getAmi:getAmi' && (c.inputs as {owners?: string[]}).owners?.includes('self'))
    expect(lookup?.inputs).to.deep.include({region: 'us-east-1', mostRecent: true})
    expect((lookup?.inputs as {filters: unknown[]}).filters).to.deep.include({name: 'tag:muster:group', values: ['web']})
    // The project's own images only.
    expect((lookup?.inputs as {filters: unknown[]}).filters).to.deep.include({name: 'tag:muster:project', values: ['alpha']})
    const template = seen.find((s) => s.type === 'aws:ec2/launchTemplate:LaunchTemplate')
    expect(template?.inputs.imageId).to.equal(LOOKED_UP_AMI)
    expect(seen.filter((s) => s.type === 'aws:autoscaling/group:Group')).to.have.length(1)
    expect(outputs.asgName).to.equal('web')
  })

  it('fleet with a bake boots the baked AMI; a group that never bakes boots source_ami', async () => {
    const baked = await run({...emptyIntent(), bake: true, fleet: true})
    expect(baked.seen.find((s) => s.type === 'aws:ec2/launchTemplate:LaunchTemplate')?.inputs.imageId).to.equal(BAKED_AMI)
    const unbaked = await run({...emptyIntent(), fleet: true}, {packer: false})
    expect(unbaked.seen.find((s) => s.type === 'aws:ec2/launchTemplate:LaunchTemplate')?.inputs.imageId).to.equal('ami-0123abcd')
    expect(unbaked.seen.some((s) => s.type === COMMAND)).to.equal(false)
  })

  it('instances: one per recorded instance, with a key pair only when a public key was given', async () => {
    const {seen, outputs} = await run({...emptyIntent(), instances: [{name: 'one', zone: 'us-east-1a'}, {name: 'two', zone: 'us-east-1b', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample'}]})
    expect(seen.filter((s) => s.type === 'aws:ec2/instance:Instance').map((s) => s.inputs.availabilityZone)).to.deep.equal(['us-east-1a', 'us-east-1b'])
    expect(seen.filter((s) => s.type === 'aws:ec2/keyPair:KeyPair')).to.have.length(1)
    expect((outputs.instances as Array<{name: string}>).map((i) => i.name)).to.deep.equal(['one', 'two'])
  })
})
