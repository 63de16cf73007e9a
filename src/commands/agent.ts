import {Flags} from '@oclif/core'

import {MusterCommand, nodesFlag} from '../base-command.js'
import {runAgent} from '../agent/daemon.js'
import {type AgentInput, readConfigFile, resolveSettings} from '../agent/settings.js'
import {registryFlags} from '../registry-flags.js'

export default class AgentCommand extends MusterCommand {
  static override summary = 'Run the node agent: register this node\'s services in etcd and re-provision when its dependencies change.'
  static override description = `The daemon on every node (systemd starts it there). It announces the node and its services under one lease, writes what chef-solo needs to know about the services this node depends on and offers into STATE_DIR/attributes.json, and re-provisions when a dependency gains or loses a node: debounced (--wait MIN:MAX), never two runs at once.

SIGHUP re-reads the nodes file: a service that left the group's run list is deregistered first, its dependents are given until --drain seconds to re-provision past that, then its delete recipe (recipe[COOKBOOK::delete-SERVICE]) runs, then the new run list converges. SIGTERM deregisters everything at once and exits 0.

The provision command runs with MUSTER_ATTRIBUTES, MUSTER_REASON (boot, dependency, decommission, config), MUSTER_NODE, MUSTER_GROUP, MUSTER_REVISION, and MUSTER_RUN_LIST for a delete recipe. Its output goes to STATE_DIR/provision.log.

--config FILE takes the same settings as JSON (camelCase keys: group, nodes, node, address, etcd, project, provision, stateDir, statusAddr, ttl, wait, drain, dna, logFormat, etcdCa, etcdCert, etcdKey, etcdUser, etcdPasswordFile); flags override it.

A locked registry: https:// endpoints with --etcd-ca (and --etcd-cert/--etcd-key when etcd asks for a client certificate), and an etcd user with --etcd-user, its password in MUSTER_ETCD_PASSWORD or --etcd-password-file (a file of mode 600). \`muster registry:init\` creates the agent's user.`
  static override examples = [
    {description: 'On a developer machine, against a local etcd', command: '<%= config.bin %> <%= command.id %> --group 12_04-bee --node dev-1 --address 127.0.0.1 --etcd http://127.0.0.1:2379 --provision ./record.sh --status-addr 127.0.0.1:9090'},
    {description: 'On a node, from the config that user data wrote', command: '<%= config.bin %> <%= command.id %> --config /etc/muster/agent.json'},
    {description: 'Against a locked registry (TLS and the agent user registry:init created)', command: 'MUSTER_ETCD_PASSWORD_FILE=/etc/muster/etcd.password <%= config.bin %> <%= command.id %> --config /etc/muster/agent.json --etcd https://etcd.internal:2379 --etcd-ca /etc/muster/etcd-ca.pem --etcd-user muster-myproject-agent'},
    {description: 'React fast (no quiet period), drain for 10 s', command: '<%= config.bin %> <%= command.id %> --config /etc/muster/agent.json --wait 0s:0s --drain 10'},
  ]
  static override flags = {
    config: Flags.string({description: 'JSON settings (as user data writes them); flags override it.', helpValue: 'FILE'}),
    group: Flags.string({description: 'This node\'s group.', helpValue: 'GROUP'}),
    nodes: nodesFlag,
    node: Flags.string({description: 'This node\'s id (default on EC2: the instance id, from IMDSv2).', helpValue: 'ID'}),
    address: Flags.string({description: 'Address other nodes reach this node at (default on EC2: the private IPv4).', helpValue: 'ADDR'}),
    ...registryFlags,
    provision: Flags.string({description: 'Provision command, run with /bin/sh -c (default: chef-solo with /etc/muster/solo.rb and the attributes file).', helpValue: 'CMD'}),
    'state-dir': Flags.string({description: 'Where the attributes file and provision log live (default: .muster/agent/NODE).', helpValue: 'DIR'}),
    'status-addr': Flags.string({description: 'Serve GET /health and GET /metrics here.', helpValue: 'HOST:PORT'}),
    ttl: Flags.integer({description: 'Lease TTL in seconds: how long registrations outlive a dead agent (default 15).', helpValue: 'SECONDS'}),
    wait: Flags.string({description: 'Quiet period and cap before re-provisioning, as consul-template writes it (default 2s:10s).', helpValue: 'MIN:MAX'}),
    drain: Flags.integer({description: 'Seconds to wait for dependents to let go of a removed service (default 60).', helpValue: 'SECONDS'}),
    dna: Flags.string({description: 'The node\'s dna (default: dna/instances/GROUP-NODE.json, else dna/asg/GROUP.json beside the nodes file).', helpValue: 'FILE'}),
    'log-format': Flags.string({description: 'Log lines on stderr as text or json.', options: ['text', 'json']}),
  }

  public async run(): Promise<void> {
    const {flags} = await this.parse(AgentCommand)
    const input: AgentInput = {
      group: flags.group,
      nodes: flags.nodes,
      node: flags.node,
      address: flags.address,
      etcd: flags.etcd,
      project: flags.project,
      provision: flags.provision,
      stateDir: flags['state-dir'],
      statusAddr: flags['status-addr'],
      ttl: flags.ttl,
      wait: flags.wait,
      drain: flags.drain,
      dna: flags.dna,
      logFormat: flags['log-format'],
      etcdCa: flags['etcd-ca'],
      etcdCert: flags['etcd-cert'],
      etcdKey: flags['etcd-key'],
      etcdUser: flags['etcd-user'],
      etcdPasswordFile: flags['etcd-password-file'],
    }
    const config = flags.config === undefined ? {} : readConfigFile(flags.config)
    const settings = resolveSettings(input, config, process.env)
    process.exitCode = await runAgent(settings, {cwd: process.cwd(), env: process.env})
  }
}
