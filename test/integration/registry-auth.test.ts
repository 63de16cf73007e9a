// A locked registry, against a real etcd with TLS (client certificates required) and auth on, with
// certificates made at test time: registry:init creates the roles and users (idempotently), an
// agent's credentials cannot write a deploy request or a group's release, a certificate from
// another CA is refused with a clear error, and agents register and react to each other with TLS
// and auth on.
import {expect} from 'chai'
import {Etcd3, EtcdPermissionDeniedError} from 'etcd3'
import {readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {type AgentProject, createAgentProject, MACHINE, type RunningAgent, servicesIn, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {runMuster} from '../support/cli.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {makeTempDir, removeDir, waitUntil} from '../support/process.js'
import {makeCertificates, type TlsFiles} from '../support/tls.js'

const PROJECT = 'locked'
const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
  api: {run_list: ['recipe[shop-service::api]']},
  web: {depends_on: ['api'], run_list: ['recipe[web]']},
}

describe('a locked registry (real etcd with TLS and auth)', function () {
  this.timeout(90_000)
  let dir: string
  let tls: TlsFiles
  let etcd: EtcdServer
  let project: AgentProject
  const agents: RunningAgent[] = []
  let pw: string
  /** The CLI's TLS flags, with the right client certificate. */
  let tlsArgs: string[]

  const password = (user: string): string => readFileSync(join(pw, `${user}.password`), 'utf8').trim()
  const client = (user: string): Etcd3 =>
    new Etcd3({
      hosts: etcd.endpoint,
      credentials: {rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.clientCert), privateKey: readFileSync(tls.clientKey)},
      auth: {username: user, password: password(user)},
    })

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    dir = makeTempDir('tls')
    tls = makeCertificates(dir)
    pw = join(dir, 'pw')
    etcd = await startEtcd({tls})
    project = createAgentProject(PROJECT, GROUPS)
    tlsArgs = ['--etcd', etcd.endpoint, '--etcd-ca', tls.ca, '--etcd-cert', tls.clientCert, '--etcd-key', tls.clientKey, '--project', PROJECT]
  })

  after(async function () {
    await stopAll(agents)
    await etcd?.stop()
    project?.cleanup()
    if (dir) removeDir(dir)
  })

  it('registry:init creates the roles, the users (passwords in files of mode 600) and turns auth on', function () {
    const result = runMuster(['registry:init', ...tlsArgs, '--enable-auth', '--yes', '--out', pw, '--json'], {cwd: project.dir})
    expect(result.code, result.stderr).to.equal(0)
    const steps = (JSON.parse(result.stdout) as {steps: Array<{action: string; subject: string; detail: string}>}).steps
    const lines = steps.map((s) => `${s.action} ${s.subject} ${s.detail}`)
    expect(lines).to.include(`created role muster-${PROJECT}-agent `)
    expect(lines).to.include(`granted role muster-${PROJECT}-agent readwrite /muster/${PROJECT}/rollout/*`)
    expect(lines).to.include(`granted role muster-${PROJECT}-operator readwrite /muster/${PROJECT}/*`)
    expect(lines.at(-1)).to.match(/^enabled etcd authentication/)
    for (const user of [`muster-${PROJECT}-agent`, `muster-${PROJECT}-operator`, 'root']) {
      expect(statSync(join(pw, `${user}.password`)).mode & 0o777).to.equal(0o600)
      // A password goes to its file only, never to the output.
      expect(result.stdout + result.stderr).not.to.include(password(user))
    }
  })

  it('refuses a client without a user now, and says what to give', function () {
    const result = runMuster(['service:ls', ...tlsArgs], {cwd: project.dir})
    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/refused/).and.to.match(/--etcd-user/)
  })

  it('registry:init again, as root, changes nothing', function () {
    const result = runMuster(['registry:init', ...tlsArgs, '--etcd-user', 'root', '--out', pw, '--json'], {cwd: project.dir, env: {...process.env, MUSTER_ETCD_PASSWORD: password('root')}})
    expect(result.code, result.stderr).to.equal(0)
    const steps = (JSON.parse(result.stdout) as {steps: Array<{action: string}>}).steps
    expect(steps.map((s) => s.action)).to.deep.equal(['unchanged', 'unchanged', 'unchanged', 'unchanged'])
  })

  it('an agent\'s credentials may register but cannot write a deploy request or a group\'s release', async function () {
    const agent = client(`muster-${PROJECT}-agent`)
    const operator = client(`muster-${PROJECT}-operator`)
    try {
      await agent.put(`/muster/${PROJECT}/services/api/probe`).value('{}')
      await agent.put(`/muster/${PROJECT}/rollout/20261125T000000Z-abcdef/nodes/probe`).value('{}')
      for (const key of [`/muster/${PROJECT}/deploys/20261125T000000Z-abcdef`, `/muster/${PROJECT}/groups/api/release`, '/muster/other/services/api/probe']) {
        let refused: unknown
        await agent.put(key).value('{}').catch((error: unknown) => {
          refused = error
        })
        expect(refused, key).to.be.instanceOf(EtcdPermissionDeniedError)
        if (key.startsWith(`/muster/${PROJECT}/`)) expect(await operator.get(key).string(), key).to.equal(null)
      }
      await operator.put(`/muster/${PROJECT}/deploys/20261125T000000Z-abcdef`).value('{}')
      await operator.delete().prefix(`/muster/${PROJECT}/`)
    } finally {
      agent.close()
      operator.close()
    }
  })

  it('refuses a client certificate from another CA, and a CA that did not sign etcd\'s, with clear errors', function () {
    const env = {...process.env, MUSTER_ETCD_USER: `muster-${PROJECT}-operator`, MUSTER_ETCD_PASSWORD: password(`muster-${PROJECT}-operator`)}
    const rogueClient = runMuster(['service:ls', '--etcd', etcd.endpoint, '--etcd-ca', tls.ca, '--etcd-cert', tls.rogueCert, '--etcd-key', tls.rogueKey, '--project', PROJECT], {cwd: project.dir, env})
    expect(rogueClient.code, rogueClient.stderr).to.equal(1)
    expect(rogueClient.stderr).to.match(/^Error: TLS with the registry at https:\/\/127\.0\.0\.1:\d+ failed: etcd refused this client's certificate/m).and.to.match(/--etcd-cert and --etcd-key/)
    const wrongCa = runMuster(['service:ls', '--etcd', etcd.endpoint, '--etcd-ca', tls.rogueCa, '--etcd-cert', tls.clientCert, '--etcd-key', tls.clientKey, '--project', PROJECT], {cwd: project.dir, env})
    expect(wrongCa.code).to.equal(1)
    expect(wrongCa.stderr).to.match(/TLS with the registry .* failed: etcd's certificate is not signed by the CA given/).and.to.match(/--etcd-ca/)
    const wrongPassword = runMuster(['service:ls', ...tlsArgs], {cwd: project.dir, env: {...env, MUSTER_ETCD_PASSWORD: 'not-it'}})
    expect(wrongPassword.code).to.equal(1)
    expect(wrongPassword.stderr).to.include('refused the user name or password')
  })

  it('agents register and react to each other with TLS and auth on, through the agent user', async function () {
    const env = {MUSTER_ETCD_CA: tls.ca, MUSTER_ETCD_CERT: tls.clientCert, MUSTER_ETCD_KEY: tls.clientKey}
    const extraArgs = ['--etcd-user', `muster-${PROJECT}-agent`, '--etcd-password-file', join(pw, `muster-${PROJECT}-agent.password`)]
    const web = await startAgent(project, {group: 'web', node: 'web-1', endpoints: [etcd.endpoint], env, extraArgs})
    agents.push(web)
    await waitForBoot(web)
    const api = await startAgent(project, {group: 'api', node: 'api-1', address: '10.1.0.1', endpoints: [etcd.endpoint], env, extraArgs})
    agents.push(api)
    await waitForBoot(api)
    await waitUntil('web re-provisions with api-1', async () => project.runs('web-1').some((r) => r.reason === 'dependency' && servicesIn(r, 'api').includes('api-1')), {proc: web.proc, timeoutMs: 20_000})
    const ls = runMuster(['service:ls', ...tlsArgs, '--json'], {cwd: project.dir, env: {...process.env, MUSTER_ETCD_USER: `muster-${PROJECT}-operator`, MUSTER_ETCD_PASSWORD: password(`muster-${PROJECT}-operator`)}})
    expect(ls.code, ls.stderr).to.equal(0)
    expect((JSON.parse(ls.stdout) as Array<{service: string; node: string}>).map((r) => `${r.service}@${r.node}`)).to.deep.equal(['api@api-1'])
    expect(await api.stop()).to.equal(0)
    expect(await web.stop()).to.equal(0)
  })
})
