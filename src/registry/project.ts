// Which project's keys a command or agent uses: --project, else MUSTER_PROJECT, else the `name` in
// Pulumi.yaml beside the nodes file (the same project the stacks belong to).
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {checkSegment} from './keys.js'

export async function resolveProject(flag: string | undefined, env: NodeJS.ProcessEnv, projectDir: string): Promise<string> {
  const hint = 'Give --project NAME or MUSTER_PROJECT, or a `name:` in Pulumi.yaml.'
  if (flag !== undefined) return checkSegment('--project', flag, hint)
  if (env.MUSTER_PROJECT) return checkSegment('MUSTER_PROJECT', env.MUSTER_PROJECT, hint)
  const file = join(projectDir, 'Pulumi.yaml')
  if (!existsSync(file)) {
    throw new UserError(`no project name: neither --project, MUSTER_PROJECT nor ${file}`, {hint})
  }
  // yaml only here: the agent reads Pulumi.yaml once at start and loads nothing else of Pulumi.
  const {parse} = await import('yaml')
  let name: unknown
  try {
    name = (parse(readFileSync(file, 'utf8')) as {name?: unknown} | null)?.name
  } catch (error) {
    throw new UserError(`${file} is not valid YAML: ${(error as Error).message}`, {hint})
  }
  if (typeof name !== 'string') throw new UserError(`${file} has no string \`name\``, {hint})
  return checkSegment(`${file}: name`, name, hint)
}
