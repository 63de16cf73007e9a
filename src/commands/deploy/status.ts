import {Args, Flags} from '@oclif/core'

import {MusterCommand} from '../../base-command.js'
import {deployStatus, type DeployStatusData, followDeploy, summaryData} from '../../actions/deploy-follow.js'
import {registryTarget} from '../../actions/registry-target.js'
import {openEtcd} from '../../registry/etcd.js'
import {registryFlags, registryScopeFlags} from '../../registry-flags.js'
import {formatDeployHeader, formatDeploySummary, formatDetached, formatProgressLine, streamFollowHandlers} from '../../ui/deploy.js'
import {colorFor} from '../../ui/io-host.js'

export default class DeployStatus extends MusterCommand {
  static override summary = 'Show a deploy\'s progress: every targeted node and how it went.'
  static override description = `Without ID, the newest deploy of the project (deploy ids sort by time). Reads the deploy's keys once and prints one row per targeted node; exits 0 whatever the nodes did. With --follow it follows the rollout as instance:deploy does (progress on stderr, the summary at the end) and exits 0 only if every targeted node succeeded; Ctrl-C detaches again (exit 130).`
  static override examples = [
    {description: 'The newest deploy', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'The release digest staging runs, to promote it (instance:deploy --env production --release DIGEST)', command: "<%= config.bin %> <%= command.id %> --env staging --json | jq -r '.request.releases[\"12_04-bee\"].digest'"},
    {description: 'Follow a deploy you detached from', command: '<%= config.bin %> <%= command.id %> 20261125T193000Z-a1b2c3 --follow'},
    {description: 'Nodes that did not succeed, as JSON', command: "<%= config.bin %> <%= command.id %> --json | jq '.nodes[] | select(.outcome != \"ok\")'"},
  ]
  static override enableJsonFlag = true
  static override args = {id: Args.string({description: 'Deploy id (default: the newest).'})}
  static override flags = {
    ...registryFlags,
    ...registryScopeFlags,
    follow: Flags.boolean({char: 'f', description: 'Follow the rollout until it ends; exit 0 only if every node succeeded.'}),
  }

  public async run(): Promise<DeployStatusData> {
    const {args, flags} = await this.parse(DeployStatus)
    const json = this.jsonEnabled()
    const target = await registryTarget(flags, process.env, process.cwd())
    const store = openEtcd({endpoints: target.endpoints, callTimeoutMs: 3000, security: target.security})
    try {
      const {data: status, progress} = await deployStatus(store, target.project, args.id)
      if (!flags.follow) {
        const stop = status.stop ?? undefined
        if (!json) process.stdout.write(`${formatDeployHeader(status.request, stop)}${formatProgressLine({progress, elapsedMs: status.elapsedMs, etaMs: undefined, stop})}\n\n${formatDeploySummary(progress)}`)
        return status
      }
      if (!json) process.stderr.write(formatDeployHeader(status.request, status.stop ?? undefined))
      const abort = new AbortController()
      const onSigint = (): void => abort.abort()
      process.once('SIGINT', onSigint)
      const {handlers, renderer} = streamFollowHandlers(process.stderr, {json, color: colorFor(process.stderr, {json})})
      let result
      try {
        result = await followDeploy({store, project: target.project, id: status.id, handlers, signal: abort.signal})
      } finally {
        renderer.end()
        process.removeListener('SIGINT', onSigint)
      }
      const data: DeployStatusData = {id: status.id, request: result.request, done: result.progress.done, ...summaryData(result)}
      if (result.detached) {
        process.stderr.write(formatDetached(status.id, flags))
        process.exitCode = 130
        return data
      }
      if (!json) process.stdout.write(formatDeploySummary(result.progress))
      process.exitCode = result.progress.ok ? 0 : 1
      return data
    } finally {
      store.close()
    }
  }
}

