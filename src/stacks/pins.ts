// The images environments' stacks pin (packer:promote records muster:image in
// stacks/Pulumi.GROUP.ENV.yaml), read from the config files themselves, without the engine: what
// retention and packer:delete run inside another environment's stack update must still see them.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {parse} from 'yaml'

import {stackName} from '../nodes/environments.js'
import {pinnedImageOf, type PinnedImage} from './intent.js'

export interface Pin {
  environment: string
  /** The config file it is recorded in, relative to the root. */
  file: string
  image: PinnedImage
}

/** Pulumi.yaml's stackConfigDir ('' when none), read without writing a default project file. */
function stackConfigDir(root: string): string {
  const file = join(root, 'Pulumi.yaml')
  if (!existsSync(file)) return 'stacks'
  try {
    const settings = parse(readFileSync(file, 'utf8')) as {stackConfigDir?: unknown} | null
    return typeof settings?.stackConfigDir === 'string' ? settings.stackConfigDir : ''
  } catch {
    return ''
  }
}

/**
 * The image each environment's stack of the group pins. A file that is missing, unreadable or pins
 * nothing pins nothing; one that cannot be parsed is an error (retention must not guess it away).
 */
export function readPins(root: string, group: string, environments: Iterable<string>): Pin[] {
  const dir = stackConfigDir(root)
  const pins: Pin[] = []
  for (const environment of environments) {
    const file = join(dir, `Pulumi.${stackName({name: group, environment})}.yaml`)
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
