// The agent's bundle entry (dist/agent/muster-agent.mjs): the same agent as `muster agent`, without
// oclif, so one file that the node's Node.js runs is all a node needs. Errors print as the CLI
// prints them: a user error's message and next step, exit 1 (64 for usage); anything else is a bug.
import {UserError} from '../errors.js'
import {formatError} from '../ui/format.js'
import {runAgent} from './daemon.js'
import {agentInput, agentUsage, parseAgentArgv} from './options.js'
import {readConfigFile, resolveSettings} from './settings.js'

declare const MUSTER_VERSION: string

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const {values, help, version} = parseAgentArgv(argv)
    if (help) {
      process.stdout.write(agentUsage())
      return 0
    }
    if (version) {
      process.stdout.write(`muster-agent ${typeof MUSTER_VERSION === 'string' ? MUSTER_VERSION : 'dev'} node-${process.versions.node}\n`)
      return 0
    }
    const {input, config} = agentInput(values, env)
    const settings = resolveSettings(input, config === undefined ? {} : readConfigFile(config), env)
    return await runAgent(settings, {cwd: process.cwd(), env})
  } catch (error) {
    const isUser = error instanceof UserError
    process.stderr.write(formatError(error as Error, {bug: !isUser, verbose: env.MUSTER_VERBOSE === '1', color: false}))
    return isUser ? error.exitCode : 1
  }
}

process.exitCode = await main(process.argv.slice(2), process.env)
