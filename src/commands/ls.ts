import {MusterCommand, envFlag, nodesFlag} from '../base-command.js'
import {loadNodes} from '../nodes/load.js'
import {nodeGroups} from '../nodes/model.js'
import {servicesOf} from '../nodes/services.js'
import {formatTable} from '../ui/format.js'

interface GroupRow {
  name: string
  instance_type: string
  region: string
  autoscale: string
  image: string
  recipes: number
  /** The services the group's nodes run (see nodes/services.ts). */
  services: string[]
  description: string
}

export default class Ls extends MusterCommand {
  static override summary = 'List the node groups with their key settings.'
  static override examples = [
    {description: 'A table', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Names only, for a script', command: "<%= config.bin %> <%= command.id %> --json | jq -r '.[].name'"},
  ]
  static override enableJsonFlag = true
  static override flags = {nodes: nodesFlag, env: envFlag}

  public async run(): Promise<GroupRow[]> {
    const {flags} = await this.parse(Ls)
    const nodes = loadNodes({cwd: process.cwd(), path: flags.nodes, environment: flags.env})
    const rows: GroupRow[] = nodeGroups(nodes).map((g) => ({
      name: g.name,
      instance_type: g.instance_type,
      region: g.region,
      autoscale: g.autoscale === false ? 'no' : `${g.autoscale.node_min}-${g.autoscale.node_max}`,
      image: g.packer === false ? `${g.source_ami ?? ''} (not baked)` : g.from_base ? 'baked from base' : `baked from ${g.source_ami ?? ''}`,
      recipes: g.run_list.length + g.post_run_list.length,
      services: servicesOf(g).map((s) => s.name),
      description: g.description,
    }))
    if (!this.jsonEnabled()) {
      // Which environment the regions, types and sizes are of.
      if (nodes.environment !== undefined) process.stderr.write(`Environment: ${nodes.environment} (of ${[...nodes.environments.keys()].join(', ')}; --env to choose)\n`)
      process.stdout.write(
        formatTable(
          // INSTANCE_TYPE, not TYPE: the nodes file's `type` is the Packer builder (amazon-ebs), a different setting.
          ['GROUP', 'INSTANCE_TYPE', 'REGION', 'ASG', 'IMAGE', 'RECIPES', 'SERVICES', 'DESCRIPTION'],
          rows.map((r) => [r.name, r.instance_type, r.region, r.autoscale, r.image, String(r.recipes), r.services.join(',') || '-', r.description]),
        ),
      )
    }
    return rows
  }
}
