// Promotion of a release between environments (issue 13), end to end: one nodes file with staging
// and production, agents as processes against a real etcd, releases in moto's S3 behind a proxy
// that counts PUTs. instance:deploy --env staging builds and uploads a release; its digest, read
// back with deploy:status --env staging --json, is rolled out to production with
// instance:deploy --env production --release DIGEST: production's nodes converge that very release
// (in their own Chef environment, whose file the release carries) and moto sees no new PUT. An
// unknown digest, a --release without GROUP or with a malformed digest are refused, nothing written.
import {chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, MACHINE, readPrefix, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {type CountingProxy, createBucket, startCountingProxy, startMuster} from '../support/deploy.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'

const BUCKET = 'muster-releases'
const FLEET = 'shop'
const GROUPS = {
  __environments__: {
    staging: {default: true, default_attributes: {tier: 'staging'}},
    production: {default_attributes: {tier: 'production'}, override_attributes: {sudo: {users: ['ops']}}},
  },
  __base__: {...MACHINE, run_list: ['recipe[base]']},
  web: {autoscale: {timeout: 60, node_min: 1, node_max: 3}, run_list: ['recipe[nginx]']},
}

interface DeployJson {
  id: string
  plan: {environment?: string; project: string; releaseProject: string; promotion: {digest: string} | null; groups: Array<{group: string; targets: string[]; release: {digest: string; url: string}; unchanged: boolean}>}
  uploads: {cookbooks: {url: string; uploaded: boolean} | null; manifests: Record<string, {url: string; uploaded: boolean}>}
  result: {ok: boolean; nodes: Array<{node: string; outcome: string}>}
}

describe('promoting the release staging ran to production (real etcd, moto S3, agent and CLI processes)', function () {
  this.timeout(180_000)
  let etcd: EtcdServer
  let moto: MotoServer
  let proxy: CountingProxy
  let client: Etcd3
  let project: AgentProject
  let env: NodeJS.ProcessEnv
  const agents: RunningAgent[] = []
  let stagingDigest = ''

  /** The agent of one environment, as its user data configures it; its provision command notes its Chef environment. */
  async function startEnvironmentAgent(environment: string, node: string): Promise<RunningAgent> {
    const wrapper = join(project.dir, 'record-environment.sh')
    writeFileSync(
      wrapper,
      `#!/bin/sh
file=none
if [ -n "$MUSTER_ENVIRONMENT_PATH" ] && [ -f "$MUSTER_ENVIRONMENT_PATH/$MUSTER_ENVIRONMENT.json" ]; then file=$MUSTER_ENVIRONMENT_PATH/$MUSTER_ENVIRONMENT.json; fi
printf '%s %s %s %s\\n' "$MUSTER_REASON" "$MUSTER_ENVIRONMENT" "\${MUSTER_RELEASE_DIR:-none}" "$file" >> "$RECORD_DIR/$MUSTER_NODE.environment"
exec ${project.recorder}
`,
    )
    chmodSync(wrapper, 0o755)
    const agent = await startAgent({...project, project: `${FLEET}.${environment}`, recorder: wrapper}, {
      group: 'web',
      node,
      endpoints: [etcd.endpoint],
      ttl: 5,
      wait: '50ms:500ms',
      env: {...moto.env, MUSTER_RELEASE_BUCKET: BUCKET},
      extraArgs: ['--environment', environment, '--release-project', FLEET],
    })
    agents.push(agent)
    return agent
  }

  /** "REASON ENVIRONMENT RELEASE_DIR ENVIRONMENT_FILE" per run of a node's provision command. */
  const environmentRuns = (node: string): string[][] => {
    const file = join(project.recordDir, `${node}.environment`)
    return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => l.split(' ')) : []
  }

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    ;[etcd, moto] = await Promise.all([startEtcd(), startMoto({sourceImages: []})])
    proxy = await startCountingProxy(moto)
    await createBucket(moto, BUCKET)
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject(FLEET, GROUPS)
    mkdirSync(join(project.dir, 'cookbooks', 'nginx', 'recipes'), {recursive: true})
    writeFileSync(join(project.dir, 'cookbooks', 'nginx', 'recipes', 'default.rb'), 'package "nginx"\n')
    env = {...moto.env, AWS_ENDPOINT_URL: proxy.endpoint, MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: FLEET, MUSTER_RELEASE_BUCKET: BUCKET}
    await startEnvironmentAgent('staging', 'web-s1')
    await startEnvironmentAgent('production', 'web-p1')
    await startEnvironmentAgent('production', 'web-p2')
    await Promise.all(agents.map((a) => waitForBoot(a, 60_000)))
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    await proxy?.stop()
    await Promise.all([etcd?.stop(), moto?.stop()])
    project?.cleanup()
  })

  it('deploys to staging: only staging\'s node converges, in the staging Chef environment the release carries', async () => {
    const run = await startMuster(['instance:deploy', 'web', '--env', 'staging', '--yes', '--json'], {cwd: project.dir, env, timeoutMs: 120_000}).result
    expect(run.code, `${run.stderr}\n${describeRuns(project.runs('web-s1'))}`).to.equal(0)
    const deploy = JSON.parse(run.stdout) as DeployJson
    expect(deploy.plan).to.include({environment: 'staging', project: 'shop.staging', releaseProject: 'shop', promotion: null})
    expect(deploy.plan.groups[0]?.targets).to.deep.equal(['web-s1'])
    expect(deploy.result.nodes.map((n) => `${n.node}:${n.outcome}`)).to.deep.equal(['web-s1:ok'])
    expect(run.stderr).to.contain('environment staging (registry project shop.staging)')
    // The release is the fleet's: filed under muster/shop/, not one environment's project.
    expect(deploy.plan.groups[0]?.release.url).to.match(new RegExp(`^s3://${BUCKET}/muster/shop/releases/web/[0-9a-f]{64}\\.json$`))
    expect(proxy.puts.filter((p) => p.endsWith('.tgz'))).to.have.length(1)

    // deploy:status --env staging --json gives the full digest to promote.
    const status = await startMuster(['deploy:status', '--env', 'staging', '--json'], {cwd: project.dir, env}).result
    expect(status.code, status.stderr).to.equal(0)
    stagingDigest = (JSON.parse(status.stdout) as {request: {releases: Record<string, {digest: string}>}}).request.releases.web?.digest ?? ''
    expect(stagingDigest).to.match(/^[0-9a-f]{64}$/).and.to.equal(deploy.plan.groups[0]?.release.digest)
    expect((await agents[0]?.health())?.release).to.equal(stagingDigest)

    const stagingRun = environmentRuns('web-s1').find((r) => r[0] === 'deploy')
    expect(stagingRun?.slice(1, 3)).to.deep.equal(['staging', join(agents[0]?.stateDir ?? '', 'releases', stagingDigest)])
    expect(stagingRun?.[3]).to.equal(join(agents[0]?.stateDir ?? '', 'releases', stagingDigest, 'environments', 'staging.json'))
    // Every environment's file is in the release, whichever --env built it.
    for (const name of ['staging', 'production']) {
      expect(JSON.parse(readFileSync(join(agents[0]?.stateDir ?? '', 'current', 'environments', `${name}.json`), 'utf8'))).to.deep.include({name, chef_type: 'environment'})
    }
    // Production's nodes did not take part.
    for (const node of ['web-p1', 'web-p2']) expect(environmentRuns(node).map((r) => r[0])).to.deep.equal(['boot'])
    expect([...(await readPrefix(client, '/muster/shop.production/deploys/')).keys()]).to.deep.equal([])
  })

  it('refuses a --release that names no release in the bucket, a malformed digest, and --release without GROUP; nothing written', async () => {
    const puts = proxy.puts.length
    const unknown = 'f'.repeat(64)
    const missing = await startMuster(['instance:deploy', 'web', '--env', 'production', '--release', unknown, '--yes'], {cwd: project.dir, env}).result
    expect(missing.code).to.equal(1)
    expect(missing.stderr).to.contain(`release ${unknown} of group web: not in the release bucket ${BUCKET}`).and.to.contain(`s3://${BUCKET}/muster/shop/releases/web/${unknown}.json`).and.to.contain('Nothing was written.')
    const malformed = await startMuster(['instance:deploy', 'web', '--env', 'production', '--release', 'abc123', '--yes'], {cwd: project.dir, env}).result
    expect(malformed.code).to.equal(1)
    expect(malformed.stderr).to.match(/--release "abc123": expected a release digest \(64 hex digits, lower case\)/)
    const noGroup = await startMuster(['instance:deploy', '--env', 'production', '--release', stagingDigest, '--yes'], {cwd: project.dir, env}).result
    expect(noGroup.code).to.equal(1)
    expect(noGroup.stderr).to.contain('--release rolls out one group\'s release, and no GROUP was given').and.to.contain('muster instance:deploy 12_04-bee --env production --release DIGEST')
    expect(proxy.puts.length).to.equal(puts)
    expect([...(await readPrefix(client, '/muster/shop.production/')).keys()].filter((k) => !k.includes('/nodes/') && !k.includes('/services/'))).to.deep.equal([])
  })

  it('rolls staging\'s release out to production with --release: the same digest converges, nothing is built or PUT', async () => {
    const puts = proxy.puts.length
    const run = await startMuster(['instance:deploy', 'web', '--env', 'production', '--release', stagingDigest, '-n', '2', '--yes', '--json'], {cwd: project.dir, env, timeoutMs: 120_000}).result
    expect(run.code, `${run.stderr}\n${describeRuns([...project.runs('web-p1'), ...project.runs('web-p2')])}`).to.equal(0)
    const deploy = JSON.parse(run.stdout) as DeployJson
    expect(deploy.plan).to.deep.include({environment: 'production', project: 'shop.production', releaseProject: 'shop'})
    expect(deploy.plan.promotion?.digest).to.equal(stagingDigest)
    expect(deploy.plan.groups[0]?.release.digest).to.equal(stagingDigest)
    expect(deploy.plan.groups[0]?.targets).to.deep.equal(['web-p1', 'web-p2'])
    expect(run.stderr).to.contain(`promoting release ${stagingDigest}`).and.to.contain('nothing is built or uploaded')
    expect(deploy.uploads.cookbooks).to.equal(null)
    expect(deploy.uploads.manifests.web?.uploaded).to.equal(false)
    expect(proxy.puts.slice(puts), 'PUTs moto received during the promotion').to.deep.equal([])
    expect(deploy.result.nodes.map((n) => `${n.node}:${n.outcome}`)).to.deep.equal(['web-p1:ok', 'web-p2:ok'])

    const production = agents.filter((a) => a.node.startsWith('web-p'))
    for (const agent of production) {
      expect((await agent.health()).release, agent.node).to.equal(stagingDigest)
      const deployRun = environmentRuns(agent.node).find((r) => r[0] === 'deploy')
      expect(deployRun, agent.node).to.deep.equal(['deploy', 'production', join(agent.stateDir, 'releases', stagingDigest), join(agent.stateDir, 'releases', stagingDigest, 'environments', 'production.json')])
      expect(JSON.parse(readFileSync(join(agent.stateDir, 'current', 'environments', 'production.json'), 'utf8'))).to.deep.include({name: 'production', override_attributes: {sudo: {users: ['ops']}}})
    }
    expect(JSON.parse((await client.get('/muster/shop.production/groups/web/release').string()) ?? '{}')).to.deep.include({digest: stagingDigest})
    // Staging converged nothing more.
    expect(environmentRuns('web-s1').map((r) => r[0])).to.deep.equal(['boot', 'deploy'])

    // A production node that boots later converges the promoted release at its boot (groups/web/release).
    const late = await startEnvironmentAgent('production', 'web-p3')
    await waitForBoot(late, 60_000)
    expect((await late.health()).release).to.equal(stagingDigest)
    expect(environmentRuns('web-p3')[0]).to.deep.equal(['boot', 'production', join(late.stateDir, 'releases', stagingDigest), join(late.stateDir, 'releases', stagingDigest, 'environments', 'production.json')])
  })
})
