// The parts that run machines (fleet, instances). Loaded only when the intent asks for them, so
// verbs that only bake never load @pulumi/aws (it is large).
import * as aws from '@pulumi/aws'
import type * as pulumi from '@pulumi/pulumi'

import {TAG_ENVIRONMENT, TAG_GROUP, TAG_PROJECT} from '../lib/tags.js'
import {renderUserData, type UserDataOptions} from '../artifacts/userdata.js'
import {UserError} from '../errors.js'
import type {Group} from '../nodes/model.js'
import {requireAutoscale} from '../nodes/model.js'
import {Fleet} from './fleet.js'
import {Instances} from './instances.js'
import type {ProgramContext} from './program.js'

/** The image machines boot from: this stack's bake, else the project's newest baked AMI, else source_ami. */
export function machineImage(group: Group, project: string, baked: pulumi.Input<string> | undefined): pulumi.Input<string> {
  if (baked !== undefined) return baked
  if (group.packer === false) {
    if (!group.source_ami) throw new UserError(`group ${group.name} is not baked and has no source_ami`, {hint: 'Set source_ami for the group in the nodes file.'})
    return group.source_ami
  }
  return aws.ec2
    .getAmiOutput({
      region: group.region,
      owners: ['self'],
      mostRecent: true,
      filters: [
        {name: `tag:${TAG_GROUP}`, values: [group.name]},
        // Never another project's image of a group with the same name (a legacy one: packer:adopt).
        {name: `tag:${TAG_PROJECT}`, values: [project]},
        // …and never another environment's (packer:promote pins the image another environment runs).
        ...(group.environment === undefined ? [] : [{name: `tag:${TAG_ENVIRONMENT}`, values: [group.environment]}]),
        {name: 'state', values: ['available']},
      ],
    })
    .apply((ami) => ami.id)
}

const userDataOptions = (ctx: ProgramContext): UserDataOptions => (ctx.fleet === undefined ? {} : {fleet: ctx.fleet})

export async function addMachines(ctx: ProgramContext, baked: pulumi.Input<string> | undefined): Promise<Record<string, unknown>> {
  // Refuse before any look-up: the reason is the nodes file, not AWS.
  if (ctx.intent.fleet) requireAutoscale(ctx.group)
  const imageId = machineImage(ctx.group, ctx.project, baked)
  const template = ctx.userDataTemplate ?? ''
  const outputs: Record<string, unknown> = {}
  if (ctx.intent.fleet) {
    const fleet = new Fleet('fleet', {group: ctx.group, imageId, userData: renderUserData(template, ctx.group, userDataOptions(ctx)), generations: ctx.intent.generations})
    outputs.launchTemplateId = fleet.launchTemplateId
    outputs.launchTemplateVersion = fleet.launchTemplateVersion
    outputs.asgName = fleet.asgName
    outputs.asgNames = fleet.asgNames
  }
  if (ctx.intent.instances.length > 0) {
    const instances = new Instances('instances', {
      group: ctx.group,
      instances: ctx.intent.instances,
      imageId,
      // Each one-off node converges with a dna of its own name.
      userData: (instance) => renderUserData(template, ctx.group, {...userDataOptions(ctx), dnaId: `${ctx.group.name}-${instance.name}`}),
    })
    outputs.instances = instances.instances
  }
  return outputs
}
