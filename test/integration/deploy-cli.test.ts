// instance:deploy, deploy:status and deploy:cancel as processes against a real etcd and moto's S3
// (behind a proxy that counts the PUTs it forwards). The agents' side of the protocol is played by
// the test (test/support/deploy.ts playAgents) or written into etcd directly: these tests are about
// the CLI, the plan, the uploads and what lands in the registry, and in which order.
import {createHash} from 'node:crypto'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {GetObjectCommand, PutObjectCommand, S3Client} from '@aws-sdk/client-s3'
import {expect} from 'chai'
import {Etcd3, type Lease} from 'etcd3'

import {type AgentProject, createAgentProject, MACHINE, readPrefix} from '../support/agent.js'
import {createBucket, type CountingProxy, nodeStatus, playAgents, putLiveNode, startCountingProxy, startMuster} from '../support/deploy.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {freePort, waitUntil} from '../support/process.js'

const BUCKET = 'muster-releases'
const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]']},
  web: {autoscale: {timeout: 60, node_min: 1, node_max: 3}, run_list: ['recipe[nginx]']},
  api: {run_list: ['recipe[api]']},
  idle: {run_list: ['recipe[idle]']},
}

interface DeployJson {
  id: string
  plan: {groups: Array<{group: string; targets: string[]; roleDiff: string | null; cookbooksChanged: boolean; previous: unknown; unchanged: boolean}>; timeout: number; timeoutSource: string}
  uploads: {cookbooks: {url: string; uploaded: boolean} | null; manifests: Record<string, {url: string; uploaded: boolean}>}
  result: {ok: boolean; counts: Record<string, number>; stop: {reason: string} | null; nodes: Array<{node: string; group: string; outcome: string; message: string | null}>}
}

describe('instance:deploy, deploy:status, deploy:cancel (real etcd, moto S3, CLI processes)', function () {
  this.timeout(120_000)
  let etcd: EtcdServer
  let moto: MotoServer
  let proxy: CountingProxy
  let client: Etcd3
  let lease: Lease
  let project: AgentProject
  let env: NodeJS.ProcessEnv
  let counter = 0

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    ;[etcd, moto] = await Promise.all([startEtcd(), startMoto({sourceImages: []})])
    proxy = await startCountingProxy(moto)
    await createBucket(moto, BUCKET)
    client = new Etcd3({hosts: etcd.endpoint})
  })

  beforeEach(async function () {
    counter += 1
    project = createAgentProject(`dep${counter}`, GROUPS)
    mkdirSync(join(project.dir, 'cookbooks', 'nginx', 'recipes'), {recursive: true})
    writeFileSync(join(project.dir, 'cookbooks', 'nginx', 'recipes', 'default.rb'), 'package "nginx"\n')
    env = {...moto.env, AWS_ENDPOINT_URL: proxy.endpoint, MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: project.project, MUSTER_RELEASE_BUCKET: BUCKET}
    lease = client.lease(30)
    for (const node of ['web-1', 'web-2', 'web-3']) await putLiveNode(client, lease, project.project, node, 'web')
    await putLiveNode(client, lease, project.project, 'api-1', 'api')
    proxy.puts.length = 0
    proxy.refusePuts = false
  })

  afterEach(async function () {
    await lease.revoke().catch(() => undefined)
    project.cleanup()
  })

  after(async function () {
    client?.close()
    await proxy?.stop()
    await Promise.all([etcd?.stop(), moto?.stop()])
  })

  const deploysKeys = async (): Promise<string[]> => [...(await readPrefix(client, `/muster/${project.project}/deploys/`)).keys()]
  const groupsKeys = async (): Promise<string[]> => [...(await readPrefix(client, `/muster/${project.project}/groups/`)).keys()]
  const tarballPuts = (): string[] => proxy.puts.filter((p) => p.endsWith('.tgz'))
  const manifestPuts = (): string[] => proxy.puts.filter((p) => p.endsWith('.json'))

  async function getObject(url: string): Promise<string> {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(url) as RegExpExecArray
    const s3 = new S3Client({endpoint: moto.endpoint, region: moto.region, forcePathStyle: true, credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}})
    try {
      return await (await s3.send(new GetObjectCommand({Bucket: bucket, Key: key}))).Body?.transformToString() ?? ''
    } finally {
      s3.destroy()
    }
  }

  it('plans, uploads, writes the request and the group\'s release, follows to ok and prints one row per node', async () => {
    const agents = playAgents(client, project.project)
    try {
      const run = await startMuster(['instance:deploy', 'web', '-n', '2', '--yes'], {cwd: project.dir, env}).result
      expect(run.code, run.stderr).to.equal(0)
      expect(run.stderr).to.contain('web  release').and.contain('nodes (3): web-1, web-2, web-3').and.contain('first release of this group')
      expect(run.stderr).to.match(/timeout 2:00 \(60 s \(autoscale.timeout\) × 2 batches \(ceil\(3 nodes \/ 2\)\)\)/)
      expect(run.stderr).to.match(/ok 3 · failed 0 · running 0 · waiting 0 of 3/)
      const rows = run.stdout.trimEnd().split('\n')
      expect(rows[0]).to.match(/^NODE\s+GROUP\s+RESULT/)
      expect(rows.slice(1).map((r) => r.split(/\s+/).slice(0, 3).join(' '))).to.deep.equal(['web-1 web ok', 'web-2 web ok', 'web-3 web ok'])
    } finally {
      agents.stop()
    }
    const keys = await readPrefix(client, `/muster/${project.project}/`)
    const [requestKey] = [...keys.keys()].filter((k) => /deploys\/[^/]+$/.test(k))
    const request = JSON.parse(keys.get(requestKey as string)?.value ?? '{}') as {groups: string[]; n: number; maxErrors: number; targets: Record<string, string[]>; releases: Record<string, {digest: string; url: string; sha256: string}>; deadline: string; requestedAt: string}
    expect(request).to.include({n: 2, maxErrors: 0})
    expect(request.groups).to.deep.equal(['web'])
    expect(request.targets).to.deep.equal({web: ['web-1', 'web-2', 'web-3']})
    expect(Date.parse(request.deadline) - Date.parse(request.requestedAt)).to.equal(120_000)
    expect(JSON.parse(keys.get(`/muster/${project.project}/groups/web/release`)?.value ?? '{}')).to.deep.equal(request.releases.web)
    const manifest = JSON.parse(await getObject(request.releases.web?.url ?? '')) as {role: {run_list: string[]}; cookbooks: {url: string; sha256: string}}
    expect(manifest.role.run_list).to.deep.equal(['recipe[base::default]', 'recipe[nginx::default]'])
    expect(tarballPuts()).to.deep.equal([`/${BUCKET}/muster/${project.project}/cookbooks/${manifest.cookbooks.sha256}.tgz`])
    expect(manifestPuts()).to.have.length(1)
  })

  it('never uploads an unchanged cookbook set (or an unchanged manifest) again; shows the role diff when the run list changed', async () => {
    const agents = playAgents(client, project.project)
    try {
      const first = await startMuster(['instance:deploy', 'web', '-n', '3', '--yes', '--json'], {cwd: project.dir, env}).result
      expect(first.code, first.stderr).to.equal(0)
      const a = JSON.parse(first.stdout) as DeployJson
      expect(a.uploads.cookbooks?.uploaded).to.equal(true)
      expect(tarballPuts()).to.have.length(1)

      const second = await startMuster(['instance:deploy', 'web', '-n', '3', '--yes', '--json'], {cwd: project.dir, env}).result
      expect(second.code, second.stderr).to.equal(0)
      const b = JSON.parse(second.stdout) as DeployJson
      expect(b.uploads.cookbooks?.uploaded).to.equal(false)
      expect(b.uploads.manifests.web?.uploaded).to.equal(false)
      expect(b.plan.groups[0]).to.include({roleDiff: '', cookbooksChanged: false, unchanged: true})
      expect(tarballPuts(), 'PUTs of the tarball moto received').to.have.length(1)
      expect(manifestPuts()).to.have.length(1)

      project.writeNodes({...GROUPS, web: {...GROUPS.web, run_list: ['recipe[nginx]', 'recipe[fail2ban]']}})
      const third = await startMuster(['instance:deploy', 'web', '-n', '3', '--yes', '--json'], {cwd: project.dir, env}).result
      expect(third.code, third.stderr).to.equal(0)
      const c = JSON.parse(third.stdout) as DeployJson
      expect(c.plan.groups[0]?.roleDiff).to.contain('+        "recipe[fail2ban::default]"')
      expect(c.plan.groups[0]?.cookbooksChanged).to.equal(false)
      expect(third.stderr).to.contain('role: changed since release').and.contain('cookbooks: unchanged')
      expect(tarballPuts()).to.have.length(1)
      expect(manifestPuts()).to.have.length(2)
      expect(c.result.nodes.map((n) => `${n.node}:${n.outcome}`)).to.deep.equal(['web-1:ok', 'web-2:ok', 'web-3:ok'])
    } finally {
      agents.stop()
    }
  })

  it('uploads a cookbook tarball again when the object in the bucket no longer holds its bytes (tampered with)', async () => {
    const agents = playAgents(client, project.project)
    try {
      const first = await startMuster(['instance:deploy', 'web', '-n', '3', '--yes', '--json'], {cwd: project.dir, env}).result
      expect(first.code, first.stderr).to.equal(0)
      const {cookbooks} = (JSON.parse(first.stdout) as DeployJson).uploads
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(cookbooks?.url ?? '') as RegExpExecArray
      const s3 = new S3Client({endpoint: moto.endpoint, region: moto.region, forcePathStyle: true, credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}})
      try {
        await s3.send(new PutObjectCommand({Bucket: bucket, Key: key, Body: Buffer.from('not the cookbooks')}))
        const second = await startMuster(['instance:deploy', 'web', '-n', '3', '--yes', '--json'], {cwd: project.dir, env}).result
        expect(second.code, second.stderr).to.equal(0)
        expect((JSON.parse(second.stdout) as DeployJson).uploads.cookbooks?.uploaded).to.equal(true)
        expect(tarballPuts()).to.have.length(2)
        const bytes = Buffer.from(await (await s3.send(new GetObjectCommand({Bucket: bucket, Key: key}))).Body?.transformToByteArray() ?? [])
        expect(createHash('sha256').update(bytes).digest('hex')).to.equal(/([0-9a-f]{64})\.tgz$/.exec(key as string)?.[1])
      } finally {
        s3.destroy()
      }
    } finally {
      agents.stop()
    }
  })

  it('takes the release bucket from __base__.release_bucket when neither --bucket nor MUSTER_RELEASE_BUCKET is given', async () => {
    project.writeNodes({...GROUPS, __base__: {...GROUPS.__base__, release_bucket: BUCKET}})
    const agents = playAgents(client, project.project)
    try {
      const run = await startMuster(['instance:deploy', 'api', '--yes', '--json'], {cwd: project.dir, env: {...env, MUSTER_RELEASE_BUCKET: ''}}).result
      expect(run.code, run.stderr).to.equal(0)
      expect((JSON.parse(run.stdout) as DeployJson).uploads.manifests.api?.url).to.match(new RegExp(`^s3://${BUCKET}/muster/${project.project}/releases/api/[0-9a-f]{64}\\.json$`))
    } finally {
      agents.stop()
    }
  })

  it('writes nothing to the registry when an upload fails (the request comes only after the uploads)', async () => {
    proxy.refusePuts = true
    const run = await startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env, timeoutMs: 60_000}).result
    expect(run.code).to.equal(1)
    expect(run.stderr).to.contain('Error:').and.contain(`s3://${BUCKET}/muster/${project.project}/cookbooks/`)
    expect(await deploysKeys()).to.deep.equal([])
    expect(await groupsKeys()).to.deep.equal([])
  })

  describe('bad input: a clear error, and nothing under deploys/ or groups/', () => {
    const cases: Array<{name: string; args: string[]; env?: () => NodeJS.ProcessEnv; message: RegExp}> = [
      {name: 'no registry settings', args: ['instance:deploy', 'web', '--yes'], env: () => ({...env, MUSTER_ETCD_ENDPOINTS: ''}), message: /no registry endpoints/},
      {name: '-n 0', args: ['instance:deploy', 'web', '-n', '0', '--yes'], message: /-n 0: expected at least 1 node at a time/},
      {name: 'an unknown group', args: ['instance:deploy', 'nope', '--yes'], message: /no group "nope"/},
      {name: 'a group with no live nodes', args: ['instance:deploy', 'idle', '--yes'], message: /group idle has no live nodes in the registry/},
      {name: 'no release bucket', args: ['instance:deploy', 'web', '--yes'], env: () => ({...env, MUSTER_RELEASE_BUCKET: ''}), message: /no release bucket/},
      {name: 'a bucket that does not exist (said before the plan)', args: ['instance:deploy', 'web', '--yes', '--bucket', 'no-such-bucket'], message: /^Error: the release bucket no-such-bucket does not exist/},
      {name: 'a bad bucket name', args: ['instance:deploy', 'web', '--yes', '--bucket', 's3://x/y'], message: /--bucket "s3:\/\/x\/y" is not an S3 bucket name/},
      {name: 'no --yes without a terminal', args: ['instance:deploy', 'web'], message: /needs --yes when there is no terminal/},
    ]
    for (const c of cases) {
      it(c.name, async () => {
        const run = await startMuster(c.args, {cwd: project.dir, env: c.env ? c.env() : env, timeoutMs: 60_000}).result
        expect(run.code, run.stderr).to.equal(1)
        expect(run.stderr).to.match(c.message)
        expect(run.stderr).to.not.contain('bug')
        expect(await deploysKeys()).to.deep.equal([])
        expect(await groupsKeys()).to.deep.equal([])
      })
    }

    it('deploy:status and deploy:cancel in a project with no deploy', async () => {
      const status = await startMuster(['deploy:status'], {cwd: project.dir, env}).result
      expect(status.code, status.stderr).to.equal(1)
      expect(status.stderr).to.contain(`no deploy in project ${project.project}`).and.contain('muster instance:deploy GROUP')
      const cancel = await startMuster(['deploy:cancel', '20990101T000000Z-000000'], {cwd: project.dir, env}).result
      expect(cancel.code, cancel.stderr).to.equal(1)
      expect(cancel.stderr).to.contain('no deploy 20990101T000000Z-000000')
      expect([...(await readPrefix(client, `/muster/${project.project}/rollout/`)).keys()], 'cancel of an unknown deploy writes no stop key').to.deep.equal([])
    })

    it('an unreachable bucket endpoint', async () => {
      const port = await freePort()
      const run = await startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env: {...env, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1'}, timeoutMs: 60_000}).result
      expect(run.code, run.stderr).to.equal(1)
      expect(run.stderr).to.match(/^Error: cannot reach the release bucket/).and.contain(`http://127.0.0.1:${port}`)
      expect(await deploysKeys()).to.deep.equal([])
    })

    it('an etcd that does not answer', async () => {
      const port = await freePort()
      const run = await startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env: {...env, MUSTER_ETCD_ENDPOINTS: `http://127.0.0.1:${port}`}, timeoutMs: 60_000}).result
      expect(run.code, run.stderr).to.equal(1)
      expect(run.stderr).to.contain('cannot reach the registry')
      expect(await deploysKeys()).to.deep.equal([])
    })
  })

  it('reports a failed node with its log lines, stops handing out slots (max-errors 0) and exits non-zero', async () => {
    const agents = playAgents(client, project.project, {failures: {'web-1': 'provision exited with 3\nERROR: package fail2ban not found\nChef run failed'}})
    try {
      const run = await startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env}).result
      expect(run.code, run.stderr).to.equal(1)
      expect(run.stderr).to.contain('✗ web-1 (web) failed: provision exited with 3\n    ERROR: package fail2ban not found\n    Chef run failed')
      expect(run.stderr).to.contain('no further node starts: too many failures (--max-errors)')
      const rows = run.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s{2,}/).slice(0, 3).join('|'))
      expect(rows).to.deep.equal(['web-1|web|failed', 'web-2|web|not started (stopped)', 'web-3|web|not started (stopped)'])
    } finally {
      agents.stop()
    }
    const stop = [...(await readPrefix(client, `/muster/${project.project}/rollout/`)).entries()].find(([k]) => k.endsWith('/stop'))
    expect(JSON.parse(stop?.[1].value ?? '{}')).to.include({reason: 'max-errors'})
  })

  it('stops at the deadline: writes stop {reason: timeout}, nodes never started are reported, exit 1', async () => {
    const run = await startMuster(['instance:deploy', 'api', '--yes', '--timeout', '2'], {cwd: project.dir, env}).result
    expect(run.code, run.stderr).to.equal(1)
    expect(run.stdout).to.match(/api-1\s+api\s+not started \(timeout\)/)
    const stop = [...(await readPrefix(client, `/muster/${project.project}/rollout/`)).entries()].find(([k]) => k.endsWith('/stop'))
    expect(JSON.parse(stop?.[1].value ?? '{}')).to.include({reason: 'timeout'})
  })

  it('detaches on Ctrl-C (exit 130) and leaves the deploy untouched; deploy:status --follow picks it up', async () => {
    const cli = startMuster(['instance:deploy', 'web', '-n', '2', '--yes'], {cwd: project.dir, env})
    await waitUntil('the deploy request', async () => (await deploysKeys()).length > 0 && cli.stderr().includes('following it'), {timeoutMs: 30_000})
    cli.signal('SIGINT')
    const run = await cli.result
    expect(run.code, run.stderr).to.equal(130)
    const id = /deploys\/([^/]+)$/.exec((await deploysKeys())[0] ?? '')?.[1]
    expect(run.stderr).to.contain(`detached; follow again with: muster deploy:status ${id} --follow`)
    expect(await deploysKeys()).to.deep.equal([`/muster/${project.project}/deploys/${id}`])
    expect([...(await readPrefix(client, `/muster/${project.project}/rollout/${id}/`)).keys()].filter((k) => k.endsWith('/stop')), 'no stop key after a detach').to.deep.equal([])

    const agents = playAgents(client, project.project)
    try {
      const follow = await startMuster(['deploy:status', '--follow'], {cwd: project.dir, env}).result
      expect(follow.code, follow.stderr).to.equal(0)
      expect(follow.stderr).to.contain(`Deploy ${id}: web; 3 nodes, 2 at a time`)
      expect(follow.stdout.trimEnd().split('\n')).to.have.length(4)
    } finally {
      agents.stop()
    }
  })

  it('refuses a second deploy of a group while one is rolling out, writing nothing; takes it once that one is cancelled', async () => {
    const cli = startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env})
    await waitUntil('the first deploy request', async () => (await deploysKeys()).length > 0 && cli.stderr().includes('following it'), {timeoutMs: 30_000})
    cli.signal('SIGINT')
    expect((await cli.result).code).to.equal(130)
    const [first] = await deploysKeys()
    const id = /deploys\/([^/]+)$/.exec(first ?? '')?.[1]
    const second = await startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env}).result
    expect(second.code, second.stderr).to.equal(1)
    expect(second.stderr).to.contain(`Error: deploy ${id} of web is still rolling out (0 running, 3 waiting)`).and.contain(`muster deploy:cancel ${id}`)
    expect(await deploysKeys(), 'nothing written').to.deep.equal([first])
    // Another group is not held up by it.
    const other = await startMuster(['instance:deploy', 'api', '--yes', '--timeout', '2'], {cwd: project.dir, env}).result
    expect(other.stderr).not.to.contain('still rolling out')
    expect((await startMuster(['deploy:cancel', id as string], {cwd: project.dir, env}).result).code).to.equal(0)
    const third = startMuster(['instance:deploy', 'web', '--yes'], {cwd: project.dir, env})
    await waitUntil('the third deploy request', async () => (await deploysKeys()).filter((k) => /web|deploys/.test(k)).length === 3 && third.stderr().includes('following it'), {timeoutMs: 30_000})
    third.signal('SIGINT')
    expect((await third.result).code).to.equal(130)
  })

  it('keeps following through an etcd restart (the watch resumes) and ends with every node ok', async () => {
    const cli = startMuster(['instance:deploy', 'web', '-n', '3', '--yes'], {cwd: project.dir, env})
    await waitUntil('the deploy request', async () => (await deploysKeys()).length > 0 && cli.stderr().includes('following it'), {timeoutMs: 30_000})
    await etcd.restart()
    const agents = playAgents(client, project.project)
    try {
      const run = await cli.result
      expect(run.code, run.stderr).to.equal(0)
      expect(run.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s{2,}/).slice(0, 3).join('|'))).to.deep.equal(['web-1|web|ok', 'web-2|web|ok', 'web-3|web|ok'])
    } finally {
      agents.stop()
    }
  })

  describe('deploy:status and deploy:cancel on statuses written into etcd', () => {
    const ids = ['20261125T100000Z-aaaaaa', '20261125T110000Z-bbbbbb']
    let slotLease: Lease
    const requestFor = (id: string): string => JSON.stringify({
      id,
      groups: ['web'],
      n: 2,
      maxErrors: 1,
      releases: {web: {digest: 'a'.repeat(64), url: `s3://${BUCKET}/muster/x/releases/web/${'a'.repeat(64)}.json`, sha256: 'a'.repeat(64)}},
      targets: {web: ['web-1', 'web-2', 'web-3', 'web-4']},
      requestedAt: new Date().toISOString(),
      requestedBy: 'test@host',
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
    })

    beforeEach(async () => {
      const p = `/muster/${project.project}/deploys/`
      for (const id of ids) await client.put(`${p}${id}`).value(requestFor(id)).exec()
      const newest = `/muster/${project.project}/rollout/${ids[1]}`
      slotLease = client.lease(30)
      const leaseId = await slotLease.grant()
      await slotLease.put(`${newest}/slots/0`).value('web-3').exec()
      await client.put(`${newest}/nodes/web-1`).value(nodeStatus('web-1', 'web', 'ok')).exec()
      await client.put(`${newest}/nodes/web-2`).value(nodeStatus('web-2', 'web', 'failed', {message: 'exit 1\nlast line'})).exec()
      await client.put(`${newest}/nodes/web-3`).value(nodeStatus('web-3', 'web', 'running', {lease: leaseId})).exec()
      await client.put(`${newest}/nodes/web-4`).value('{"forged": true}').exec()
    })

    afterEach(async () => {
      await slotLease.revoke().catch(() => undefined)
    })

    it('deploy:status shows the newest deploy, one row per targeted node', async () => {
      const run = await startMuster(['deploy:status'], {cwd: project.dir, env}).result
      expect(run.code, run.stderr).to.equal(0)
      expect(run.stdout).to.contain(`Deploy ${ids[1]}: web; 4 nodes, 2 at a time, --max-errors 1`)
      expect(run.stdout).to.contain('ok 1 · failed 1 · running 1 · waiting 1 of 4')
      const rows = run.stdout.split('\n').filter((l) => /^web-\d/.test(l)).map((r) => r.split(/\s{2,}/).slice(0, 3).join('|'))
      expect(rows).to.deep.equal(['web-1|web|ok', 'web-2|web|failed', 'web-3|web|running', 'web-4|web|waiting'])
      const json = JSON.parse((await startMuster(['deploy:status', ids[0] as string, '--json'], {cwd: project.dir, env}).result).stdout) as {id: string; counts: Record<string, number>}
      expect(json.id).to.equal(ids[0])
      expect(json.counts.waiting).to.equal(4)
    })

    it('deploy:status names an unknown deploy as a user error', async () => {
      const run = await startMuster(['deploy:status', '20990101T000000Z-000000'], {cwd: project.dir, env}).result
      expect(run.code).to.equal(1)
      expect(run.stderr).to.contain(`no deploy 20990101T000000Z-000000 in project ${project.project}`)
    })

    it('deploy:cancel writes the stop key once, says what still runs, and is idempotent', async () => {
      const first = await startMuster(['deploy:cancel', ids[1] as string], {cwd: project.dir, env}).result
      expect(first.code, first.stderr).to.equal(0)
      expect(first.stdout).to.contain(`Deploy ${ids[1]} cancelled: no further node starts.`).and.contain('Still running (they finish their run): web-3').and.contain('Will not start: web-4')
      const stopKey = `/muster/${project.project}/rollout/${ids[1]}/stop`
      const written = (await readPrefix(client, stopKey)).get(stopKey)?.value ?? '{}'
      expect(JSON.parse(written)).to.include({reason: 'cancelled'})
      const again = await startMuster(['deploy:cancel', ids[1] as string, '--json'], {cwd: project.dir, env}).result
      expect(again.code, again.stderr).to.equal(0)
      expect(JSON.parse(again.stdout)).to.deep.include({written: false, running: ['web-3']})
      expect((await readPrefix(client, stopKey)).get(stopKey)?.value).to.equal(written)
      const status = await startMuster(['deploy:status', ids[1] as string], {cwd: project.dir, env}).result
      expect(status.stdout).to.match(/web-4\s+web\s+not started \(stopped\)/).and.contain('no further node starts: cancelled')
    })

    it('deploy:cancel of a deploy whose nodes have all finished says so and writes nothing', async () => {
      const id = '20261125T120000Z-cccccc'
      await client.put(`/muster/${project.project}/deploys/${id}`).value(JSON.stringify({...JSON.parse(requestFor(id)), targets: {web: ['web-1', 'web-2']}})).exec()
      await client.put(`/muster/${project.project}/rollout/${id}/nodes/web-1`).value(nodeStatus('web-1', 'web', 'ok')).exec()
      await client.put(`/muster/${project.project}/rollout/${id}/nodes/web-2`).value(nodeStatus('web-2', 'web', 'failed', {message: 'exit 1'})).exec()
      const run = await startMuster(['deploy:cancel', id], {cwd: project.dir, env}).result
      expect(run.code, run.stderr).to.equal(0)
      expect(run.stdout).to.contain(`Deploy ${id} has finished (ok 1 · failed 1): nothing to cancel, nothing written.`)
      expect([...(await readPrefix(client, `/muster/${project.project}/rollout/${id}/`)).keys()].filter((k) => !k.includes('/nodes/')), 'no stop key').to.deep.equal([])
      const json = await startMuster(['deploy:cancel', id, '--json'], {cwd: project.dir, env}).result
      expect(JSON.parse(json.stdout)).to.deep.include({finished: true, written: false, stop: null, running: [], notStarted: []})
      const status = await startMuster(['deploy:status', id], {cwd: project.dir, env}).result
      expect(status.stdout).to.not.contain('no further node starts')
    })
  })
})
