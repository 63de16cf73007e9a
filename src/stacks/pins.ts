// The images environments' stacks pin (packer:promote records muster:image in
// stacks/Pulumi.GROUP.ENV.yaml), read from the config files themselves, without the engine: what
// retention and packer:delete run inside another environment's stack update must still see them.
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {parse} from 'yaml'

import {ENVIRONMENT_NAME} from '../nodes/schema.js'
import {pinnedImageOf, type PinnedImage} from './intent.js'
import {readStackConfigDir, stackConfigFileName} from './workspace.js'

export interface Pin {
  environment: string
  /** The config file it is recorded in, relative to the root. */
  file: string
  image: PinnedImage
}

/**
 * The environments with a config file of the group's stack in the folder (Pulumi.GROUP.ENV.yaml):
 * group and environment names hold no dot, so the name says both.
 */
function environmentsWithConfig(folder: string, group: string): string[] {
  let names: string[]
  try {
    names = readdirSync(folder)
  } catch {
    return []
  }
  const prefix = `Pulumi.${group}.`
  return names
    .filter((name) => name.startsWith(prefix) && name.endsWith('.yaml'))
    .map((name) => name.slice(prefix.length, -'.yaml'.length))
    .filter((environment) => ENVIRONMENT_NAME.test(environment))
    .sort()
}

/**
 * The image each environment's stack of the group pins: the environments named, and any other whose
 * config file is there (one renamed or dropped from the nodes file still has its stack, which still
 * runs the image: retention must not take it away). A file that is missing, unreadable or pins
 * nothing pins nothing; one that cannot be parsed is an error (retention must not guess it away).
 */
export function readPins(root: string, group: string, environments: Iterable<string>): Pin[] {
  const dir = readStackConfigDir(root)
  const pins: Pin[] = []
  const named = [...environments]
  for (const environment of [...named, ...environmentsWithConfig(join(root, dir), group).filter((e) => !named.includes(e))]) {
    const file = join(dir, stackConfigFileName({name: group, environment}))
    const path = join(root, file)
    if (!existsSync(path)) continue
    let config: Record<string, unknown> | undefined
    try {
      config = (parse(readFileSync(path, 'utf8')) as {config?: Record<string, unknown>} | null)?.config
    } catch (error) {
      throw new Error(`${file} is not valid YAML, so muster cannot tell which image it pins: ${(error as Error).message}`)
    }
    const image = pinnedImageOf(config)
    if (image) pins.push({environment, file, image})
  }
  return pins
}
