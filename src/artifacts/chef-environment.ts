// A Chef environment per environment of the nodes file (environments/NAME.json), generated like the
// roles: the role stays the same in every environment, and what differs between staging and
// production (attributes, cookbook version pins) lives here, where Chef's precedence puts an
// environment's default attributes above the role's defaults and its overrides above the role's.
import type {Environment} from '../nodes/environments.js'
import {toJsonText} from './json.js'

export interface ChefEnvironment {
  name: string
  description: string
  chef_type: 'environment'
  json_class: 'Chef::Environment'
  default_attributes: Record<string, unknown>
  override_attributes: Record<string, unknown>
  cookbook_versions: Record<string, string>
}

/** chef-solo's environment_path holds NAME.json for `--environment NAME`. */
export const ENVIRONMENTS_DIR = 'environments'
export const environmentPath = (name: string): string => `${ENVIRONMENTS_DIR}/${name}.json`

export function buildChefEnvironment(environment: Pick<Environment, 'name' | 'chef'>): ChefEnvironment {
  return {
    name: environment.name,
    description: environment.chef.description,
    chef_type: 'environment',
    json_class: 'Chef::Environment',
    default_attributes: environment.chef.default_attributes,
    override_attributes: environment.chef.override_attributes,
    cookbook_versions: environment.chef.cookbook_versions,
  }
}

/** Four-space indent, as roles are written. */
export function renderChefEnvironment(environment: Pick<Environment, 'name' | 'chef'>): string {
  return toJsonText(buildChefEnvironment(environment), 4)
}
