// The fleet part of a group's program: a launch template and the group's Auto Scaling group(s).
//
// Defaults (the paper asks for sane ones; every one is a choice made here, not by AWS):
//
// Launch template
//   - image: the group's newest baked AMI, or source_ami for a group that is not baked (given by the
//     program factory as `imageId`).
//   - instance metadata: IMDSv2 only (http_tokens required), endpoint enabled, hop limit 1, so
//     containers on the node cannot reach the node's credentials through an extra network hop;
//     instance tags are not exposed in the metadata (tag keys with "/" would make launches fail).
//   - root volume: gp3, encrypted with the account's default EBS key, deleted with the instance.
//     Size: the group's volume_size (GiB); without one, the AMI's own root snapshot size. The
//     device name is read from the AMI (Ubuntu /dev/sda1, Amazon Linux /dev/xvda), so the mapping
//     resizes the root volume instead of adding a second disk.
//   - security groups: looked up by name in the subnets' VPC and given as ids (see network.ts).
//   - user data: templates/user-data.sh rendered for the group (role, dna, chef-solo, agent).
//   - tags on the instances and volumes it launches: the group's tags, then Name=GROUP,
//     group=GROUP and muster:group=GROUP (muster's keys win over the group's tags of the same name).
//   - every change makes a new version, and that version becomes the default.
//
// Auto Scaling group
//   - name: GROUP (generation 0) or GROUP-gN (blue-green generation N). A fixed name reads well in
//     the console; since a name cannot exist twice, a replaced ASG is deleted before its successor
//     is created (only a rename replaces one, and renames only come with a new generation).
//   - size: min = node_min, max = node_max, desired = node_min (muster adds no scaling policies).
//   - subnets: the group's subnets, else every default subnet of the region's default VPC (one per
//     availability zone), so the fleet spreads over all zones.
//   - launch template version: the template's latest version number (not "$Latest": a number
//     changes when the template does, which is what starts an instance refresh).
//   - health check: EC2 status checks, grace period = autoscale.timeout seconds (chef-solo
//     converges in that time); default instance warm-up = autoscale.timeout as well.
//   - instance refresh on every launch template change (the provider always triggers on it):
//     strategy Rolling, min healthy 90%, max healthy 100% (AWS's default: terminate, then launch),
//     warm-up = autoscale.timeout, skip matching (instances already on the new version stay).
//     Pulumi starts the refresh and does not wait for it to end.
//   - termination policies: OldestLaunchTemplate, then OldestInstance: a scale-in removes the
//     nodes that run an outdated configuration first.
//   - tags, all propagated to the instances: the group's tags, Name=GROUP, group=GROUP (the
//     paper's "group:GROUP"), muster:group=GROUP, muster:generation=N.
//   - waits up to 10 minutes for node_min instances to be InService on create; no forced delete
//     (a destroy waits for the instances to terminate); no scale-in protection, no maximum
//     instance lifetime, no capacity rebalancing, no load balancers, no detailed metrics.
//
// Blue-green (`autoscale:update --strategy blue-green`): `generations` lists the ASGs the program
// holds. Normally one ([0], or [N] after a blue-green update). The CLI adds a generation ([N, N+1]):
// the newest one gets the current launch template version; every older one is frozen (Pulumi
// ignores changes to its launch template version and size), so it keeps running its old,
// pinned version, which stays in the launch template's history. Once the new ASG's instances are
// in service and autoscale.timeout has passed, the CLI drops the old generation ([N+1]) and
// Pulumi deletes that ASG. One launch template serves every generation, so retention sees one
// template whose versions hold both images.
import * as aws from '@pulumi/aws'
import * as pulumi from '@pulumi/pulumi'

import {UserError} from '../errors.js'
import {IMDS, qualifiedName, TAG_ENVIRONMENT, TAG_GENERATION, TAG_GROUP, TAG_GROUP_PLAIN} from '../lib/tags.js'
import {type Group, requireAutoscale} from '../nodes/model.js'
import type {AutoscaleSpec} from '../nodes/schema.js'
import {groupNetwork} from './network.js'

export const FLEET_TYPE = 'muster:stack:Fleet'


export const MIN_HEALTHY_PERCENTAGE = 90
export const MAX_HEALTHY_PERCENTAGE = 100
export const WAIT_FOR_CAPACITY_TIMEOUT = '10m'
export const TERMINATION_POLICIES = ['OldestLaunchTemplate', 'OldestInstance'] as const
export const ROOT_VOLUME_TYPE = 'gp3'

/** What an older blue-green generation keeps as it was until the CLI retires it. */
const FROZEN_ASG_PROPERTIES = ['launchTemplate', 'minSize', 'maxSize', 'desiredCapacity']

export interface FleetArgs {
  group: Group
  /** The AMI the fleet boots. */
  imageId: pulumi.Input<string>
  /** Rendered user data (renderUserData); base64-encoded here. */
  userData: string
  /**
   * The ASG generations the stack holds, default [0]. Blue-green holds two ([old, new]) until
   * the old one is retired; the highest is the live one, older ones are frozen.
   */
  generations?: readonly number[]
}

/** The ASG's name of a generation: GROUP for 0, GROUP-gN after blue-green updates. */
export function asgName(group: string, generation: number): string {
  return generation === 0 ? group : `${group}-g${generation}`
}

/** Pulumi resource name of a generation's ASG; stable, so adding a generation never touches another. */
export function asgResourceName(generation: number): string {
  return generation === 0 ? 'asg' : `asg-g${generation}`
}

function checkGenerations(generations: readonly number[]): number[] {
  if (generations.length === 0) throw new Error('Fleet needs at least one generation')
  for (const g of generations) {
    if (!Number.isInteger(g) || g < 0) throw new Error(`Fleet generation ${g} is not a whole number ≥ 0`)
  }
  const sorted = [...new Set(generations)].sort((a, b) => a - b)
  if (sorted.length !== generations.length) throw new Error(`Fleet generations repeat: ${generations.join(', ')}`)
  return sorted
}

/** muster's own tags of what a group makes: the group, and its environment when the nodes file has them. */
export function groupTags(group: Pick<Group, 'name' | 'environment'>): Record<string, string> {
  return {[TAG_GROUP_PLAIN]: group.name, [TAG_GROUP]: group.name, ...(group.environment === undefined ? {} : {[TAG_ENVIRONMENT]: group.environment})}
}

/** Tags of everything the fleet launches; muster's keys are set last so a group tag cannot hide them. */
export function machineTags(group: Group, name: string): Record<string, string> {
  return {...group.tags, Name: name, ...groupTags(group)}
}

/** The name AWS sees for the group's fleet: GROUP, or GROUP.ENV in an environment (unique per account and region). */
export const fleetName = (group: Pick<Group, 'name' | 'environment'>): string => qualifiedName(group.name, group.environment)

/** The launch template's and instances' metadata options (see lib/tags.ts). */
export const launchMetadataOptions = {httpEndpoint: IMDS.endpoint, httpTokens: IMDS.tokens, httpPutResponseHopLimit: IMDS.hopLimit, instanceMetadataTags: IMDS.instanceTags}

/** AWS wants whole seconds; autoscale.timeout may be fractional. */
const seconds = (timeout: number): number => Math.max(0, Math.ceil(timeout))

export class Fleet extends pulumi.ComponentResource {
  readonly launchTemplate: aws.ec2.LaunchTemplate
  /** ASGs by generation, oldest first; the last is the live one. */
  readonly asgs: ReadonlyArray<{generation: number; asg: aws.autoscaling.Group}>
  readonly launchTemplateId: pulumi.Output<string>
  readonly launchTemplateVersion: pulumi.Output<number>
  /** The live (newest generation's) ASG. */
  readonly asgName: pulumi.Output<string>
  /** Every generation's ASG name, oldest first. */
  readonly asgNames: pulumi.Output<string[]>

  constructor(name: string, args: FleetArgs, opts: pulumi.ComponentResourceOptions = {}) {
    // Checked before registering anything, so a refusal leaves no half-made component behind.
    const spec = requireAutoscale(args.group)
    const generations = checkGenerations(args.generations ?? [0])
    super(FLEET_TYPE, name, {}, opts)

    const network = groupNetwork(args.group, this)
    this.launchTemplate = fleetLaunchTemplate(args, network.securityGroupIds, this)
    this.launchTemplateId = this.launchTemplate.id
    this.launchTemplateVersion = this.launchTemplate.latestVersion
    const newest = generations[generations.length - 1]
    this.asgs = generations.map((generation) => ({
      generation,
      asg: fleetAsg({group: args.group, spec, generation, frozen: generation !== newest, subnetIds: network.subnetIds, launchTemplate: this.launchTemplate}, this),
    }))
    const live = this.asgs[this.asgs.length - 1]
    if (!live) throw new Error('Fleet has no ASG')
    this.asgName = live.asg.name
    this.asgNames = pulumi.all(this.asgs.map(({asg}) => asg.name))
    this.registerOutputs({
      launchTemplateId: this.launchTemplateId,
      launchTemplateVersion: this.launchTemplateVersion,
      asgName: this.asgName,
      asgNames: this.asgNames,
    })
  }
}

/** The launch template: the AMI, IMDSv2 only, an encrypted root volume, the user data. */
function fleetLaunchTemplate(args: FleetArgs, securityGroupIds: pulumi.Input<pulumi.Input<string>[]> | undefined, parent: pulumi.Resource): aws.ec2.LaunchTemplate {
  const group = args.group
  const region = group.region
  const tags = machineTags(group, fleetName(group))
  // The root device name is the AMI's; a mapping under another name would add a disk instead.
  const rootDeviceName = aws.ec2
    .getAmiOutput({region, includeDeprecated: true, filters: [{name: 'image-id', values: [pulumi.output(args.imageId)]}]}, {parent})
    .rootDeviceName
  const ebs: aws.types.input.ec2.LaunchTemplateBlockDeviceMappingEbs = {encrypted: 'true', volumeType: ROOT_VOLUME_TYPE, deleteOnTermination: 'true'}
  if (group.volume_size !== undefined) ebs.volumeSize = group.volume_size
  return new aws.ec2.LaunchTemplate(
    'launch-template',
    {
      region,
      namePrefix: `${fleetName(group)}-`,
      description: `muster group ${group.name}${group.environment === undefined ? '' : ` in ${group.environment}`}`,
      imageId: args.imageId,
      instanceType: group.instance_type,
      vpcSecurityGroupIds: securityGroupIds,
      metadataOptions: launchMetadataOptions,
      blockDeviceMappings: [{deviceName: rootDeviceName, ebs}],
      userData: Buffer.from(args.userData, 'utf8').toString('base64'),
      tagSpecifications: [
        {resourceType: 'instance', tags},
        {resourceType: 'volume', tags},
      ],
      tags: {...group.tags, ...groupTags(group)},
      updateDefaultVersion: true,
    },
    {parent},
  )
}

interface AsgArgs {
  group: Group
  spec: AutoscaleSpec
  generation: number
  /** An older blue-green generation: kept as it was until the CLI retires it. */
  frozen: boolean
  subnetIds: pulumi.Input<pulumi.Input<string>[]> | undefined
  launchTemplate: aws.ec2.LaunchTemplate
}

/** One generation's ASG, sized by autoscale, rolled by instance refresh. */
function fleetAsg(args: AsgArgs, parent: pulumi.Resource): aws.autoscaling.Group {
  const {group, spec, generation} = args
  const timeout = seconds(spec.timeout)
  const asgTags = Object.entries({...machineTags(group, fleetName(group)), [TAG_GENERATION]: String(generation)})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => ({key, value, propagateAtLaunch: true}))
  return new aws.autoscaling.Group(
    asgResourceName(generation),
    {
      region: group.region,
      name: asgName(fleetName(group), generation),
      minSize: spec.node_min,
      maxSize: spec.node_max,
      desiredCapacity: spec.node_min,
      vpcZoneIdentifiers: args.subnetIds,
      launchTemplate: {id: args.launchTemplate.id, version: args.launchTemplate.latestVersion.apply((v) => String(v))},
      healthCheckType: 'EC2',
      healthCheckGracePeriod: timeout,
      defaultInstanceWarmup: timeout,
      terminationPolicies: [...TERMINATION_POLICIES],
      waitForCapacityTimeout: WAIT_FOR_CAPACITY_TIMEOUT,
      forceDelete: false,
      instanceRefresh: {
        strategy: 'Rolling',
        preferences: {minHealthyPercentage: MIN_HEALTHY_PERCENTAGE, maxHealthyPercentage: MAX_HEALTHY_PERCENTAGE, instanceWarmup: String(timeout), skipMatching: true},
      },
      tags: asgTags,
    },
    // The name is fixed, so a replacement must free it first (see the defaults above).
    {parent, deleteBeforeReplace: true, ignoreChanges: args.frozen ? FROZEN_ASG_PROPERTIES : []},
  )
}
