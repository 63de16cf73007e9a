// Chef dna (node JSON) for an Auto Scaling group's nodes and for one-off instances.
import type {Group} from '../nodes/model.js'
import {toJsonText} from './json.js'
import {roleName} from './role.js'

export interface Dna {
  id: string
  run_list: string[]
}

export const asgDnaPath = (group: string): string => `dna/asg/${group}.json`
export const instanceDnaPath = (group: string, instanceId: string): string => `dna/instances/${group}-${instanceId}.json`

export function buildDna(group: Group, id: string = group.name): Dna {
  return {id, run_list: [`role[${roleName(group.name)}]`]}
}

export function renderDna(group: Group, id?: string): string {
  return toJsonText(buildDna(group, id))
}
