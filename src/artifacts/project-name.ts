// The project an image belongs to: the Pulumi project's name in Pulumi.yaml at the project root
// (the project every group's stack lives in). Images are tagged with it (muster:project) when baked,
// and retention, packer:delete, packer:adopt and from_base look images up by it.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {parse} from 'yaml'

import {UserError} from '../errors.js'

/** The name muster's default Pulumi.yaml gives a project (DEFAULT_PROJECT_YAML in stacks/workspace.ts). */
export const DEFAULT_PROJECT_NAME = 'muster'

/**
 * `name` from ROOT/Pulumi.yaml; the default name when there is no Pulumi.yaml yet (the first stack
 * verb writes the default file with that name, so a template generated before agrees with it).
 */
export function readProjectName(root: string): string {
  const file = join(root, 'Pulumi.yaml')
  if (!existsSync(file)) return DEFAULT_PROJECT_NAME
  const hint = 'Give Pulumi.yaml a line like "name: muster": images are tagged muster:project=NAME.'
  let name: unknown
  try {
    name = (parse(readFileSync(file, 'utf8')) as {name?: unknown} | null)?.name
  } catch (error) {
    throw new UserError(`${file} is not valid YAML: ${(error as Error).message}`, {hint})
  }
  if (typeof name !== 'string' || name.trim() === '') throw new UserError(`${file} has no project name`, {hint})
  // AWS's limit on a tag value.
  if (name.length > 256) throw new UserError(`${file}: name is ${name.length} characters; an image tag value holds at most 256`, {hint})
  return name
}
