import {Flags} from '@oclif/core'

import {MusterCommand} from '../base-command.js'
import {runAgent} from '../agent/daemon.js'
import {AGENT_OPTIONS, agentInput} from '../agent/options.js'
import {CONFIG_KEYS, readConfigFile, resolveSettings} from '../agent/settings.js'
import {flagsOf} from '../registry-flags.js'

export default class AgentCommand extends MusterCommand {
  static override summary = 'Run the node agent: register this node\'s services in etcd and re-provision when its dependencies change.'
  static override description = `The daemon on every node (systemd starts it there). It announces the node and its services under one lease, writes what chef-solo needs to know about the services this node depends on and offers into STATE_DIR/attributes.json, and re-provisions when a dependency gains or loses a node: debounced (--wait MIN:MAX), never two runs at once.

SIGHUP re-reads the nodes file: a service that left the group's run list is deregistered first, its dependents are given until --drain seconds to re-provision past that, then its delete recipe (recipe[COOKBOOK::delete-SERVICE]) runs, then the new run list converges. SIGTERM deregisters everything at once and exits 0.

The provision command runs with MUSTER_ATTRIBUTES, MUSTER_REASON (boot, dependency, decommission, config, deploy), MUSTER_NODE, MUSTER_GROUP, MUSTER_REVISION, and MUSTER_RUN_LIST for a delete recipe or a release's run list (with MUSTER_RELEASE_DIR once the node runs a release from instance:deploy). Its output goes to STATE_DIR/provision.log.

--config FILE takes the same settings as JSON (camelCase keys: ${CONFIG_KEYS.join(', ')}); flags override it.

A locked registry: https:// endpoints with --etcd-ca (and --etcd-cert/--etcd-key when etcd asks for a client certificate), and an etcd user with --etcd-user, its password in MUSTER_ETCD_PASSWORD or --etcd-password-file (a file of mode 600). \`muster registry:init\` creates the agent's user.`
  static override examples = [
    {description: 'On a developer machine, against a local etcd', command: '<%= config.bin %> <%= command.id %> --group 12_04-bee --node dev-1 --address 127.0.0.1 --etcd http://127.0.0.1:2379 --provision ./record.sh --status-addr 127.0.0.1:9090'},
    {description: 'On a node, from the config that user data wrote', command: '<%= config.bin %> <%= command.id %> --config /etc/muster/agent.json'},
    {description: 'Against a locked registry (TLS and the agent user registry:init created)', command: 'MUSTER_ETCD_PASSWORD_FILE=/etc/muster/etcd.password <%= config.bin %> <%= command.id %> --config /etc/muster/agent.json --etcd https://etcd.internal:2379 --etcd-ca /etc/muster/etcd-ca.pem --etcd-user muster-myproject-agent'},
    {description: 'React fast (no quiet period), drain for 10 s', command: '<%= config.bin %> <%= command.id %> --config /etc/muster/agent.json --wait 0s:0s --drain 10'},
  ]
  static override flags = {
    ...flagsOf(AGENT_OPTIONS),
    // oclif checks the choice (the bundle leaves it to the settings, which say the same).
    'log-format': Flags.string({description: 'Log lines on stderr as text or json.', options: ['text', 'json']}),
  }

  public async run(): Promise<void> {
    const {flags} = await this.parse(AgentCommand)
    const {input, config: configPath} = agentInput(flags, process.env)
    const config = configPath === undefined ? {} : readConfigFile(configPath)
    const settings = resolveSettings(input, config, process.env)
    process.exitCode = await runAgent(settings, {cwd: process.cwd(), env: process.env})
  }
}
