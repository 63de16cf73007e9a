// The instances part of a group's program: one-off EC2 instances (`instance:create`), each with a
// key pair when the user gave a key.
//
// Defaults, as for the fleet (see fleet.ts): IMDSv2 only with hop limit 1, an encrypted gp3 root
// volume (volume_size GiB, else the AMI's size) deleted with the instance, security groups looked
// up by name in the VPC, the group's tags plus Name=GROUP-NAME, group=GROUP, muster:group=GROUP.
// Placement: the instance's recorded zone; in one of the group's subnets in that zone when the
// group names subnets, else in the default VPC's default subnet of that zone.
//
// A one-off instance is a pet, not cattle: what it was launched with stays. A new bake, a changed
// role or user data, or a key given later would otherwise replace (or stop and start) every
// instance of the group; instead their AMI, user data and key name are fixed at launch (Pulumi
// ignores later changes to them), user data only runs on the first boot anyway, and
// `instance:deploy` re-provisions running nodes. Instance type, security groups and tags still
// follow the nodes file.
//
// Resources are named after the instance (instance-NAME, key-NAME), never after its position, so
// adding or removing one instance leaves the others alone.
import * as aws from '@pulumi/aws'
import * as pulumi from '@pulumi/pulumi'

import {UserError} from '../errors.js'
import {INSTANCE_NAME_RULE, isUsableInstanceName} from '../lib/tags.js'
import type {Group} from '../nodes/model.js'
import {fleetName, launchMetadataOptions, machineTags, ROOT_VOLUME_TYPE} from './fleet.js'
import type {InstanceIntent} from './intent.js'
import {groupNetwork} from './network.js'

export const INSTANCES_TYPE = 'muster:stack:Instances'

/** Launch-time settings of an instance that later changes never touch (see above). */
export const FIXED_AT_LAUNCH = ['ami', 'userData', 'userDataBase64', 'keyName']

export interface InstancesArgs {
  group: Group
  instances: readonly InstanceIntent[]
  imageId: pulumi.Input<string>
  /** Rendered user data, the same for every instance or one per instance (e.g. with its own dna id). */
  userData: string | ((instance: InstanceIntent) => string)
}

export interface InstanceOutput {
  name: string
  id: string
  zone: string
  privateIp: string
  /** Empty when the instance has no public address. */
  publicIp: string
}

export const instanceTagName = (group: string, name: string): string => `${group}-${name}`
export const keyPairName = (group: string, name: string): string => `muster-${group}-${name}`

/** Names are part of resource, tag and key pair names: one character set, unique in the group. */
export function checkInstanceNames(group: string, instances: readonly InstanceIntent[]): void {
  const seen = new Set<string>()
  for (const {name} of instances) {
    if (!isUsableInstanceName(name)) {
      throw new UserError(`instance name ${JSON.stringify(name)} of group ${group} is not usable`, {
        hint: INSTANCE_NAME_RULE,
      })
    }
    if (seen.has(name)) {
      throw new UserError(`group ${group} has two instances named ${name}`, {hint: 'Instance names are unique within a group; pick another --name.'})
    }
    seen.add(name)
  }
}

/**
 * The subnet an instance of `group` launches in, from the group's subnets that are in `zone`
 * (`ids`): the first by id, so the choice never changes between runs.
 */
export function subnetInZone(group: Group, zone: string, ids: readonly string[]): string {
  const first = [...ids].sort()[0]
  if (first === undefined) {
    throw new UserError(`group ${group.name} has no subnet in ${zone}`, {
      hint: `Its subnets are ${group.subnets.join(', ')}; give --zone one of their zones, or add a subnet of ${zone} to the group.`,
    })
  }
  return first
}

export class Instances extends pulumi.ComponentResource {
  readonly machines: ReadonlyArray<{intent: InstanceIntent; instance: aws.ec2.Instance; keyPair: aws.ec2.KeyPair | undefined}>
  readonly instances: pulumi.Output<InstanceOutput[]>

  constructor(name: string, args: InstancesArgs, opts: pulumi.ComponentResourceOptions = {}) {
    checkInstanceNames(args.group.name, args.instances)
    super(INSTANCES_TYPE, name, {}, opts)

    const group = args.group
    const region = group.region
    const network = groupNetwork(group, this)

    this.machines = args.instances.map((intent) => {
      const tags = machineTags(group, instanceTagName(fleetName(group), intent.name))
      const keyPair =
        intent.publicKey === undefined
          ? undefined
          : new aws.ec2.KeyPair(
              `key-${intent.name}`,
              {region, keyName: keyPairName(fleetName(group), intent.name), publicKey: intent.publicKey, tags},
              // The key name is fixed, so a new key must free it before it is imported.
              {parent: this, deleteBeforeReplace: true},
            )
      const userData = typeof args.userData === 'string' ? args.userData : args.userData(intent)
      const instance = new aws.ec2.Instance(
        `instance-${intent.name}`,
        {
          region,
          ami: args.imageId,
          instanceType: group.instance_type,
          availabilityZone: intent.zone,
          subnetId: this.subnetIn(group, intent.zone),
          vpcSecurityGroupIds: network.securityGroupIds,
          keyName: keyPair?.keyName,
          metadataOptions: launchMetadataOptions,
          rootBlockDevice: {encrypted: true, volumeType: ROOT_VOLUME_TYPE, deleteOnTermination: true, volumeSize: group.volume_size, tags},
          userData,
          tags,
        },
        {parent: this, ignoreChanges: FIXED_AT_LAUNCH},
      )
      return {intent, instance, keyPair}
    })

    this.instances = pulumi.all(
      this.machines.map(({intent, instance}) =>
        pulumi.all([instance.id, instance.availabilityZone, instance.privateIp, instance.publicIp]).apply(([id, zone, privateIp, publicIp]) => ({
          name: intent.name,
          id,
          zone,
          privateIp,
          publicIp: publicIp ?? '',
        })),
      ),
    )
    this.registerOutputs({instances: this.instances})
  }

  /**
   * The group's subnet in `zone`, or undefined (EC2 then uses the default VPC's default subnet of
   * the instance's zone, the same place the fleet's default subnets are).
   */
  private subnetIn(group: Group, zone: string): pulumi.Output<string> | undefined {
    if (group.subnets.length === 0) return undefined
    return aws.ec2
      .getSubnetsOutput({region: group.region, filters: [{name: 'subnet-id', values: [...group.subnets]}, {name: 'availability-zone', values: [zone]}]}, {parent: this})
      .ids.apply((ids) => subnetInZone(group, zone, ids))
  }
}
