// Registry isolation between environments (issue 13), against a real etcd with agents as
// processes: one nodes file with two environments, two agents of the same group and service, one
// per environment. Each environment's node:ls / service:ls --env sees only its own node; a provider
// that appears in staging re-provisions staging's agent and never reaches production's. Then, with
// TLS and auth on, registry:init --env makes each environment's roles: staging's agent user can
// neither write nor read production's keys.
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3, EtcdPermissionDeniedError} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, MACHINE, type RunningAgent, serviceValue, servicesIn, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {runMuster} from '../support/cli.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {makeTempDir, removeDir, waitUntil} from '../support/process.js'
import {makeCertificates, type TlsFiles} from '../support/tls.js'

const FLEET = 'shop'
const GROUPS = {
  __environments__: {
    staging: {default: true, instance_type: 't3.small'},
    production: {instance_type: 'm5.large'},
  },
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}, db: {port: 5432}}},
  web: {run_list: ['recipe[shop-service::api]'], depends_on: ['db']},
  db: {run_list: ['recipe[shop-service::db]']},
}

/**
 * The agent of one environment, as its user data would configure it (agent.json's project,
 * environment, releaseProject). Its provision command notes MUSTER_ENVIRONMENT, then records the run.
 */
function startEnvironmentAgent(project: AgentProject, environment: string, node: string, endpoints: string[], extra: {env?: Record<string, string>; extraArgs?: string[]} = {}): Promise<RunningAgent> {
  const wrapper = join(project.dir, 'record-environment.sh')
  writeFileSync(wrapper, `#!/bin/sh
printf '%s\\n' "$MUSTER_ENVIRONMENT" >> "$RECORD_DIR/$MUSTER_NODE.environment"
exec ${project.recorder}
`)
  chmodSync(wrapper, 0o755)
  return startAgent({...project, project: `${FLEET}.${environment}`, recorder: wrapper}, {group: 'web', node, endpoints, ...(extra.env ? {env: extra.env} : {}), extraArgs: ['--environment', environment, '--release-project', FLEET, ...(extra.extraArgs ?? [])]})
}

describe('environments never see each other\'s services (real etcd, agent and CLI processes)', function () {
  this.timeout(90_000)
  let etcd: EtcdServer
  let project: AgentProject
  let client: Etcd3
  const agents: RunningAgent[] = []
  let staging: RunningAgent
  let production: RunningAgent
  let cli: NodeJS.ProcessEnv

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject(FLEET, GROUPS)
    cli = {...process.env, MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: FLEET}
    staging = await startEnvironmentAgent(project, 'staging', 'web-staging', [etcd.endpoint])
    agents.push(staging)
    production = await startEnvironmentAgent(project, 'production', 'web-production', [etcd.endpoint])
    agents.push(production)
    await Promise.all([waitForBoot(staging), waitForBoot(production)])
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    await etcd?.stop()
    project?.cleanup()
  })

  const json = <T>(args: string[]): T => {
    const result = runMuster([...args, '--json'], {cwd: project.dir, env: cli})
    expect(result.code, result.stderr).to.equal(0)
    return JSON.parse(result.stdout) as T
  }

  it('registers each environment\'s agent under its own project: /muster/shop.staging/ and /muster/shop.production/', async () => {
    const keys = (await client.getAll().prefix('/muster/').keys()).sort()
    expect(keys).to.include('/muster/shop.staging/nodes/web-staging').and.include('/muster/shop.production/nodes/web-production')
    expect(keys.filter((k) => k.startsWith('/muster/shop/'))).to.deep.equal([])
  })

  it('node:ls and service:ls --env X see only X\'s node; without --env, the default environment\'s', () => {
    for (const [environment, node] of [['staging', 'web-staging'], ['production', 'web-production']] as const) {
      expect(json<Array<{node: string}>>(['node:ls', '--env', environment]).map((r) => r.node), environment).to.deep.equal([node])
      expect(json<Array<{service: string; node: string}>>(['service:ls', '--env', environment]).map((r) => `${r.service}@${r.node}`), environment).to.deep.equal([`api@${node}`])
    }
    expect(json<Array<{node: string}>>(['node:ls']).map((r) => r.node)).to.deep.equal(['web-staging'])
    // MUSTER_ENV selects as --env does.
    const viaEnv = runMuster(['node:ls', '--json'], {cwd: project.dir, env: {...cli, MUSTER_ENV: 'production'}})
    expect((JSON.parse(viaEnv.stdout) as Array<{node: string}>).map((r) => r.node)).to.deep.equal(['web-production'])
  })

  it('a provider appearing in staging re-provisions staging\'s agent and never reaches production\'s', async () => {
    const lease = client.lease(30)
    try {
      await lease.put('/muster/shop.staging/services/db/db-staging').value(serviceValue('db-staging', 'db', '10.5.0.1', 5432))
      await waitUntil('staging re-provisions with db-staging', async () => project.runs('web-staging').some((r) => r.reason === 'dependency' && servicesIn(r, 'db').includes('db-staging')), {proc: staging.proc, timeoutMs: 20_000})
      // Production's own provider: its agent reacts to that one (it is listening), and its view never held staging's.
      await lease.put('/muster/shop.production/services/db/db-production').value(serviceValue('db-production', 'db', '10.6.0.1', 5432))
      await waitUntil('production re-provisions with db-production', async () => project.runs('web-production').some((r) => r.reason === 'dependency' && servicesIn(r, 'db').includes('db-production')), {proc: production.proc, timeoutMs: 20_000})
      const runs = project.runs('web-production')
      for (const run of runs) expect(servicesIn(run, 'db'), describeRuns(runs)).not.to.include('db-staging')
      expect(runs.filter((r) => r.reason === 'dependency').map((r) => servicesIn(r, 'db')), describeRuns(runs)).to.deep.equal([['db-production']])
      for (const run of project.runs('web-staging')) expect(servicesIn(run, 'db')).not.to.include('db-production')
      // Each agent converges in its environment: every run of its provision command was given its name.
      for (const [node, environment] of [['web-staging', 'staging'], ['web-production', 'production']] as const) {
        const seen = readFileSync(join(project.recordDir, `${node}.environment`), 'utf8').trimEnd().split('\n')
        expect(seen.length, node).to.equal(project.runs(node).length)
        expect([...new Set(seen)], node).to.deep.equal([environment])
      }
    } finally {
      await lease.revoke()
    }
  })

  it('refuses --env on an unknown environment, and --env with no nodes file, reading nothing', () => {
    const unknown = runMuster(['node:ls', '--env', 'qa'], {cwd: project.dir, env: cli})
    expect(unknown.code).to.equal(1)
    expect(unknown.stderr).to.match(/no environment "qa" in nodes\.json/).and.to.match(/staging, production/)
    const empty = makeTempDir('env-none')
    try {
      const none = runMuster(['service:ls', '--env', 'staging'], {cwd: empty, env: cli})
      expect(none.code).to.equal(1)
      expect(none.stderr).to.match(/--env staging: there is no nodes file in .* to read its environments from/)
    } finally {
      removeDir(empty)
    }
  })
})

describe('registry:init --env: each environment\'s roles reach only its own keys (real etcd with TLS and auth)', function () {
  this.timeout(90_000)
  let dir: string
  let tls: TlsFiles
  let etcd: EtcdServer
  let project: AgentProject
  let pw: string
  let tlsArgs: string[]
  const agents: RunningAgent[] = []

  const password = (user: string): string => readFileSync(join(pw, `${user}.password`), 'utf8').trim()
  const client = (user: string): Etcd3 =>
    new Etcd3({
      hosts: etcd.endpoint,
      credentials: {rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.clientCert), privateKey: readFileSync(tls.clientKey)},
      auth: {username: user, password: password(user)},
    })

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    dir = makeTempDir('env-tls')
    tls = makeCertificates(dir)
    pw = join(dir, 'pw')
    etcd = await startEtcd({tls})
    project = createAgentProject(FLEET, GROUPS)
    tlsArgs = ['--etcd', etcd.endpoint, '--etcd-ca', tls.ca, '--etcd-cert', tls.clientCert, '--etcd-key', tls.clientKey, '--project', FLEET]
  })

  after(async function () {
    await stopAll(agents)
    await etcd?.stop()
    project?.cleanup()
    if (dir) removeDir(dir)
  })

  it('creates staging\'s roles (--enable-auth), then production\'s as root, each for its own prefix', function () {
    const first = runMuster(['registry:init', ...tlsArgs, '--env', 'staging', '--enable-auth', '--yes', '--out', pw, '--json'], {cwd: project.dir})
    expect(first.code, first.stderr).to.equal(0)
    const stagingSteps = (JSON.parse(first.stdout) as {project: string; steps: Array<{action: string; subject: string; detail: string}>})
    expect(stagingSteps.project).to.equal('shop.staging')
    const lines = stagingSteps.steps.map((s) => `${s.action} ${s.subject} ${s.detail}`)
    expect(lines).to.include('granted role muster-shop.staging-agent readwrite /muster/shop.staging/services/*')
    expect(lines).to.include('granted role muster-shop.staging-operator readwrite /muster/shop.staging/*')
    expect(lines.filter((l) => l.includes('/muster/shop.production/') || l.includes('/muster/shop/'))).to.deep.equal([])
    const second = runMuster(['registry:init', ...tlsArgs, '--env', 'production', '--etcd-user', 'root', '--out', pw, '--json'], {cwd: project.dir, env: {...process.env, MUSTER_ETCD_PASSWORD: password('root')}})
    expect(second.code, second.stderr).to.equal(0)
    expect((JSON.parse(second.stdout) as {project: string}).project).to.equal('shop.production')
  })

  it('staging\'s agent user writes staging\'s services, and can neither write nor read production\'s', async function () {
    const agent = client('muster-shop.staging-agent')
    const productionOperator = client('muster-shop.production-operator')
    try {
      await agent.put('/muster/shop.staging/services/api/probe').value('{}')
      for (const key of ['/muster/shop.production/services/api/probe', '/muster/shop.production/nodes/probe', '/muster/shop.production/rollout/20261126T000000Z-abcdef/nodes/probe', '/muster/shop/services/api/probe']) {
        let refused: unknown
        await agent.put(key).value('{}').catch((error: unknown) => {
          refused = error
        })
        expect(refused, key).to.be.instanceOf(EtcdPermissionDeniedError)
      }
      let readRefused: unknown
      await agent.getAll().prefix('/muster/shop.production/').keys().catch((error: unknown) => {
        readRefused = error
      })
      expect(readRefused).to.be.instanceOf(EtcdPermissionDeniedError)
      expect(await productionOperator.getAll().prefix('/muster/shop.production/').keys()).to.deep.equal([])
    } finally {
      agent.close()
      productionOperator.close()
    }
  })

  it('agents register with their environment\'s user, and each environment\'s service:ls sees its own', async function () {
    const env = {MUSTER_ETCD_CA: tls.ca, MUSTER_ETCD_CERT: tls.clientCert, MUSTER_ETCD_KEY: tls.clientKey}
    for (const environment of ['staging', 'production']) {
      const user = `muster-shop.${environment}-agent`
      const agent = await startEnvironmentAgent(project, environment, `web-${environment}`, [etcd.endpoint], {env, extraArgs: ['--etcd-user', user, '--etcd-password-file', join(pw, `${user}.password`)]})
      agents.push(agent)
      await waitForBoot(agent)
    }
    for (const environment of ['staging', 'production']) {
      const operator = `muster-shop.${environment}-operator`
      const ls = runMuster(['service:ls', ...tlsArgs, '--env', environment, '--json'], {cwd: project.dir, env: {...process.env, MUSTER_ETCD_USER: operator, MUSTER_ETCD_PASSWORD: password(operator)}})
      expect(ls.code, ls.stderr).to.equal(0)
      expect((JSON.parse(ls.stdout) as Array<{service: string; node: string}>).map((r) => `${r.service}@${r.node}`).filter((r) => r !== 'api@probe')).to.deep.equal([`api@web-${environment}`])
    }
    // Production's operator may not read staging's registry either.
    const cross = runMuster(['service:ls', ...tlsArgs, '--env', 'staging'], {cwd: project.dir, env: {...process.env, MUSTER_ETCD_USER: 'muster-shop.production-operator', MUSTER_ETCD_PASSWORD: password('muster-shop.production-operator')}})
    expect(cross.code).to.equal(1)
    expect(cross.stderr).to.match(/Error:/)
  })
})
