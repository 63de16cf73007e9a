// The Chef role of a group, in the paper's format.
import {uniqueRunList} from '../nodes/inherit.js'
import type {Group} from '../nodes/model.js'
import {toJsonText} from './json.js'

export interface ChefRole {
  name: string
  chef_type: 'role'
  json_class: 'Chef::Role'
  description: string
  override_attributes: Record<string, unknown>
  default_attributes: Record<string, unknown>
  run_list: string[]
}

export const roleName = (group: string): string => `role-${group}`
export const rolePath = (group: string): string => `roles/${group}.json`

export function buildRole(group: Group): ChefRole {
  return {
    name: roleName(group.name),
    chef_type: 'role',
    json_class: 'Chef::Role',
    description: group.description,
    override_attributes: group.override_attributes,
    default_attributes: group.default_attributes,
    // post_run_list goes last so notification recipes run after everything they announce.
    run_list: uniqueRunList([...group.run_list, ...group.post_run_list]),
  }
}

/** Four-space indent: the paper prints roles that way, and Chef's knife writes them so too. */
export function renderRole(group: Group): string {
  return toJsonText(buildRole(group), 4)
}
