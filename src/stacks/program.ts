// The group's Pulumi program: a factory of the resolved group plus the stack's recorded intent.
// Each part exists only when the intent asks for it; each verb updates only its own part (target).
import * as pulumi from '@pulumi/pulumi'
import type {PulumiFn} from '@pulumi/pulumi/automation/index.js'

import type {FleetSettings} from '../artifacts/node-agent.js'
import type {Group} from '../nodes/model.js'
import {Bake, BAKE_TYPE, Retention, RETENTION_TYPE} from './bake.js'
import type {Intent} from './intent.js'

export interface ProgramContext {
  group: Group
  intent: Intent
  /** Relative to the project root. */
  nodesPath: string
  /** The Pulumi project's name: images are the project's by their muster:project tag. */
  project: string
  roleText: string
  dnaText: string
  /** Set when the group bakes (its packer isn't false). */
  bake?: {templatePath: string; templateHash: string; cookbooksHash: string; baseImage?: string; agentSha256?: string}
  /** Text of templates/user-data.sh, rendered per machine (fleet, instances). */
  userDataTemplate?: string
  /** The nodes file's fleet-wide settings the user data's agent.json and nodes.json need. */
  fleet?: FleetSettings
}

export type Part = 'bake' | 'retention' | 'fleet' | 'instances'

/** Component type and name of each part, for targets. */
export const PART_COMPONENTS: Record<Part, {type: string; name: string}> = {
  bake: {type: BAKE_TYPE, name: 'bake'},
  retention: {type: RETENTION_TYPE, name: 'retention'},
  fleet: {type: 'muster:stack:Fleet', name: 'fleet'},
  instances: {type: 'muster:stack:Instances', name: 'instances'},
}

export function groupProgram(ctx: ProgramContext): PulumiFn {
  return async () => {
    const outputs: Record<string, unknown> = {role: ctx.roleText, dna: ctx.dnaText}
    let image: pulumi.Input<string> | undefined
    let bake: Bake | undefined
    const environment = ctx.group.environment
    if (ctx.intent.image) {
      // Promoted (packer:promote): the exact image another environment runs; no bake of its own.
      image = ctx.intent.image.id
      outputs.ami = ctx.intent.image.id
      outputs.promotedFrom = {environment: ctx.intent.image.from, image: ctx.intent.image.sourceId, region: ctx.intent.image.sourceRegion}
    } else if (ctx.intent.bake && ctx.bake) {
      bake = new Bake(PART_COMPONENTS.bake.name, {group: ctx.group.name, environment, nodesPath: ctx.nodesPath, ...ctx.bake})
      image = bake.imageId
      outputs.ami = bake.imageId
      outputs.adopted = bake.adopted
    }
    // Retention runs after every bake and whenever packer:clean asks again.
    if (bake || ctx.intent.cleanedAt) {
      new Retention(
        PART_COMPONENTS.retention.name,
        {group: ctx.group.name, environment, nodesPath: ctx.nodesPath, keep: ctx.intent.keep, imageId: bake?.imageId ?? '', askedAt: ctx.intent.cleanedAt ?? ''},
        bake ? {dependsOn: [bake]} : {},
      )
    }
    if (ctx.intent.fleet || ctx.intent.instances.length > 0) {
      const machines = await import('./machines.js')
      Object.assign(outputs, await machines.addMachines(ctx, image))
    }
    return outputs
  }
}
