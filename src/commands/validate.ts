import {dependencyCycles} from '../nodes/dependencies.js'
import {loadNodes} from '../nodes/load.js'
import {isAutoscaled, isBaked, nodeGroups} from '../nodes/model.js'
import {MusterCommand, envFlag, nodesFlag} from '../base-command.js'
import {formatCycle, formatWarning} from '../ui/format.js'
import {colorFor} from '../ui/io-host.js'

interface ValidateResult {
  file: string
  groups: string[]
  /** Problems that do not fail the file (dependency cycles); also printed to stderr. */
  warnings: string[]
  /** The environments the file declares (every one is checked), and the one selected. */
  environments?: string[]
  environment?: string
}

export default class Validate extends MusterCommand {
  static override summary = 'Check the nodes file and report every problem at once.'
  static override description = `Each problem names file:line:column, the key path and what was expected. Exit code 0 when the file is good, 1 otherwise.

A dependency on a service that no group runs is a problem; a dependency cycle between services (api → web → api) is a warning on stderr, and the exit code stays 0.`
  static override examples = [
    {description: 'Check nodes.json in this directory', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Check another file', command: '<%= config.bin %> <%= command.id %> --nodes infra/nodes.yaml'},
  ]
  static override enableJsonFlag = true
  static override flags = {nodes: nodesFlag, env: envFlag}

  public async run(): Promise<ValidateResult> {
    const {flags} = await this.parse(Validate)
    const nodes = loadNodes({cwd: process.cwd(), path: flags.nodes, environment: flags.env})
    const groups = [...nodes.groups.keys()]
    const own = nodeGroups(nodes)
    const autoscaled = own.filter(isAutoscaled).length
    const baked = own.filter(isBaked).length
    const warnings = dependencyCycles(nodes).map(
      (cycle) => `${nodes.file}: dependency cycle ${formatCycle(cycle)} (the nodes that run each service depend on the next)`,
    )
    const color = colorFor(process.stderr, {json: this.jsonEnabled()})
    for (const warning of warnings) process.stderr.write(formatWarning(warning, {color}))
    // Every environment was resolved and checked; the counts are of the one selected.
    const environments = [...nodes.environments.keys()].map((name) => (name === nodes.environment ? `${name} (selected)` : name))
    const inEnvironments = environments.length > 0 ? `; environments: ${environments.join(', ')}` : ''
    this.log(`${nodes.file}: ok — ${own.length} group${own.length === 1 ? '' : 's'} (${own.map((g) => g.name).join(', ')}), ${autoscaled} autoscaled, ${baked} baked${inEnvironments}`)
    // A file without environments gives what it gave before they existed.
    return {file: nodes.file, groups, warnings, ...(nodes.environment === undefined ? {} : {environments: [...nodes.environments.keys()], environment: nodes.environment})}
  }
}
