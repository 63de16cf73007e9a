// Where a group's machines go: its subnets (named in the nodes file, else the default VPC's
// default subnets) and its security groups, which the nodes file names and EC2 wants as ids.
//
// Why ids and not names: launch templates and instances accept security group *names* only in a
// default VPC; a group whose subnets are in another VPC would fail at launch. Looking names up in
// the subnets' VPC works in both, and a name that is ambiguous or missing fails the preview, not
// the launch. A value already shaped like an id (sg-…) is used as is.
import * as aws from '@pulumi/aws'
import * as pulumi from '@pulumi/pulumi'

import type {Group} from '../nodes/model.js'

export const SECURITY_GROUP_ID = /^sg-[0-9a-f]+$/

export interface Network {
  /** The VPC the group's machines run in. */
  vpcId: pulumi.Output<string>
  /** The group's subnets, or every default subnet of the region's default VPC (sorted, so their order never shows as a change). */
  subnetIds: pulumi.Output<string[]>
  /** The group's security groups as ids, in the nodes file's order. */
  securityGroupIds: pulumi.Output<string[]>
}

/** Look-ups run as children of `parent`, so they use its provider (and its region). */
export function groupNetwork(group: Group, parent: pulumi.Resource): Network {
  const opts: pulumi.InvokeOutputOptions = {parent}
  const region = group.region
  let vpcId: pulumi.Output<string>
  let subnetIds: pulumi.Output<string[]>
  const first = group.subnets[0]
  if (first !== undefined) {
    // Subnets of one ASG are in one VPC (EC2 refuses otherwise), so the first one tells which.
    vpcId = aws.ec2.getSubnetOutput({id: first, region}, opts).vpcId
    subnetIds = pulumi.output([...group.subnets])
  } else {
    vpcId = aws.ec2.getVpcOutput({default: true, region}, opts).id
    subnetIds = aws.ec2
      .getSubnetsOutput({region, filters: [{name: 'vpc-id', values: [vpcId]}, {name: 'default-for-az', values: ['true']}]}, opts)
      .ids.apply((ids) => [...ids].sort())
  }
  const securityGroupIds = pulumi.all(
    group.security_groups.map((name) => (SECURITY_GROUP_ID.test(name) ? pulumi.output(name) : aws.ec2.getSecurityGroupOutput({name, vpcId, region}, opts).id)),
  )
  return {vpcId, subnetIds, securityGroupIds}
}
