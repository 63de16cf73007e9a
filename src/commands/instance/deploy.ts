import {Args, Flags} from '@oclif/core'

import {MusterCommand, envFlag, nodesFlag} from '../../base-command.js'
import {Deploy, type DeployPlan} from '../../actions/deploy.js'
import {type DeploySummaryData, type FollowResult, followDeploy, summaryData} from '../../actions/deploy-follow.js'
import {registryTarget} from '../../actions/registry-target.js'
import type {UploadResult} from '../../release/upload.js'
import {registryFlags} from '../../registry-flags.js'
import {formatDeployPlan, formatDeploySummary, formatDetached, streamFollowHandlers} from '../../ui/deploy.js'
import {colorFor} from '../../ui/io-host.js'

export interface InstanceDeployResult {
  id: string
  plan: DeployPlan
  uploads: UploadResult
  detached: boolean
  result: DeploySummaryData
}

export default class InstanceDeploy extends MusterCommand {
  static override summary = 'Re-provision a group, or every group with live nodes, in batches through the agents.'
  static override description = `A deploy is a release, rolled out. First it shows what will go out: per group, the live nodes targeted (from the registry), the diff of the role since the group's last release, and whether the cookbooks changed. Then it asks (--yes is required without a terminal), uploads the releases to the release bucket (content-addressed: an unchanged cookbook set or manifest is not uploaded again), and only then writes the deploy request and each group's current release to the registry. The nodes' agents take one of N slots each, download and verify the release, provision with MUSTER_REASON=deploy and report.

It follows the rollout on stderr (ok, failed, running and waiting of the total; elapsed; ETA; one line per failure with the node's last log lines) and prints one row per node on stdout at the end. It exits 0 only if every targeted node succeeded. Ctrl-C detaches (exit 130) and leaves the deploy running: follow it again with deploy:status ID --follow.

The release bucket is --bucket, else MUSTER_RELEASE_BUCKET, else "release_bucket" in the nodes file's __base__. --timeout bounds the whole rollout; its default is max(autoscale.timeout of the groups, 300 s for a group without autoscale) × ceil(nodes targeted / N), one autoscale.timeout per batch. Once the timeout passes, or more than --max-errors nodes have failed, no further node starts; runs already going finish.

With environments in the nodes file (--env, MUSTER_ENV), a deploy goes to one environment's registry project, so only its nodes converge. Releases are the fleet's: built with any --env, a group's release has the same bytes and digest (it carries every environment's Chef environment), so --release DIGEST rolls out in production exactly the release staging ran, read back from the bucket and checked, with nothing built or uploaded.`
  static override examples = [
    {description: 'Roll the paper\'s worker group, 10 nodes at a time', command: '<%= config.bin %> <%= command.id %> 12_04-bee -n 10 --bucket my-releases'},
    {description: 'Every group with live nodes, unattended, tolerating 2 failures', command: 'MUSTER_RELEASE_BUCKET=my-releases <%= config.bin %> <%= command.id %> -n 5 --max-errors 2 --yes'},
    {description: 'Promote what staging ran to production: the same release, not a rebuild', command: "<%= config.bin %> <%= command.id %> 12_04-bee --env production --release \"$(<%= config.bin %> status 12_04-bee --env staging --json | jq -r '.groups[0].registry.release')\""},
    {description: 'Machine-readable plan, uploads and per-node result', command: "<%= config.bin %> <%= command.id %> 12_04-bee --yes --json | jq '.result.nodes[] | select(.outcome != \"ok\")'"},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Node group (default: every group with live nodes).'})}
  static override flags = {
    ...registryFlags,
    nodes: nodesFlag,
    env: envFlag,
    n: Flags.integer({char: 'n', description: 'How many nodes provision at once (slots).', default: 1, helpValue: 'N'}),
    'max-errors': Flags.integer({description: 'Failures tolerated; after one more, no further node starts (runs going finish).', default: 0, helpValue: 'K'}),
    timeout: Flags.integer({description: 'Seconds the whole rollout may take (default: autoscale.timeout × batches).', helpValue: 'SECONDS'}),
    bucket: Flags.string({description: 'Release bucket (default: MUSTER_RELEASE_BUCKET, else __base__.release_bucket in the nodes file).', helpValue: 'NAME'}),
    yes: Flags.boolean({char: 'y', description: 'Deploy without asking (required when there is no terminal).'}),
    release: Flags.string({description: 'Roll out this existing release of GROUP (its full digest: the one another environment ran) instead of building one; it must be in the release bucket.', helpValue: 'DIGEST'}),
  }

  public async run(): Promise<InstanceDeployResult | undefined> {
    const {args, flags} = await this.parse(InstanceDeploy)
    const io = this.host(flags)
    const json = this.jsonEnabled()
    const registry = await registryTarget(flags, process.env, process.cwd())
    const deploy = new Deploy({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, n: flags.n, maxErrors: flags['max-errors'], timeout: flags.timeout, bucket: flags.bucket, registry, release: flags.release}, io)
    try {
      const plan = await deploy.plan()
      process.stderr.write(formatDeployPlan(plan, colorFor(process.stderr, {json})))
      await io.confirm({
        question: `Deploy to ${plan.totalTargets} node${plan.totalTargets === 1 ? '' : 's'}?`,
        unattended: {message: 'instance:deploy needs --yes when there is no terminal to ask on', hint: 'Read the plan above, then run again with --yes. Nothing was written.'},
        declined: {message: 'deploy declined; nothing was written'},
      })
      const started = await deploy.start(plan)
      const up = started.uploads
      io.progress(`Uploaded: cookbooks ${up.cookbooks === null ? 'none' : up.cookbooks.uploaded ? 'uploaded' : 'already there'}; manifests ${Object.values(up.manifests).filter((m) => m.uploaded).length} uploaded, ${Object.values(up.manifests).filter((m) => !m.uploaded).length} already there.`)
      const result = await this.follow(deploy, plan, json, () => io.progress(`Deploy ${plan.id} requested; following it (Ctrl-C detaches).`))
      return this.finish({id: plan.id, plan, uploads: up, detached: result.detached, result: summaryData(result)}, result, json, flags)
    } finally {
      deploy.close()
    }
  }

  private async follow(deploy: Deploy, plan: DeployPlan, json: boolean, announce: () => void): Promise<FollowResult> {
    const abort = new AbortController()
    const onSigint = (): void => abort.abort()
    // Ctrl-C detaches from the moment the user is told it does.
    process.once('SIGINT', onSigint)
    announce()
    const {handlers, renderer} = streamFollowHandlers(process.stderr, {json, color: colorFor(process.stderr, {json})})
    try {
      return await followDeploy({store: deploy.registry, project: plan.project, id: plan.id, handlers, signal: abort.signal})
    } finally {
      renderer.end()
      process.removeListener('SIGINT', onSigint)
    }
  }

  private finish(data: InstanceDeployResult, result: FollowResult, json: boolean, flags: Parameters<typeof formatDetached>[1]): InstanceDeployResult {
    if (result.detached) {
      process.stderr.write(formatDetached(data.id, flags))
      process.exitCode = 130
      return data
    }
    if (!json) process.stdout.write(formatDeploySummary(result.progress))
    process.exitCode = result.progress.ok ? 0 : 1
    return data
  }
}
