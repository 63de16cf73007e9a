// muster status against the real components: the stack's outputs from the real engine (a real
// bake by Packer against moto), the images and an Auto Scaling group in moto, and the registry in
// a real etcd (keys written here the way agents and instance:deploy write them). Without a
// registry its columns say unknown and the command still succeeds; orphan stacks are listed.
import {AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand} from '@aws-sdk/client-auto-scaling'
import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {StatusResult} from '../../src/actions/status.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {findTool, requireTool} from '../support/integration.js'
import {type MotoServer, registerImage} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

const DIGEST = 'a'.repeat(64)
const DEPLOY = '20261125T190000Z-0a1b2c'
const OLDER = '20261124T100000Z-ffffff'

describe('muster status (integration)', function () {
  this.timeout(300_000)
  let moto: MotoServer
  let project: MusterProject
  let etcd: EtcdServer
  let ami: string

  const etcdctl = (...args: string[]): string =>
    execFileSync(findTool('etcdctl') as string, args, {env: {...process.env, ...etcd.env}, encoding: 'utf8', timeout: 10_000})

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'etcdctl', 'scripts/ci/install-etcd.sh')
    ;({moto, project} = await startStackProject(this, {web: {autoscale: {timeout: 30, node_min: 2, node_max: 2}}, plain: {packer: false}, gone: {}}))
    etcd = await startEtcd()

    // The real engine bakes web (Packer against moto): the stack's ami output and one image in EC2.
    const baked = project.muster('packer:run', 'web', '--yes', '--json')
    expect(baked.code, baked.stderr).to.equal(0)
    ami = (JSON.parse(baked.stdout) as {groups: Array<{outputs: {ami: string}}>}).groups[0]?.outputs.ami as string
    expect(ami).to.match(/^ami-/)
    // Registered after the bake, so newer: an image of web from before images carried the project
    // (legacy) and one of another project's group of the same name. Neither is this group's AMI.
    await registerImage(moto, {name: 'web-legacy', tags: {'muster:group': 'web'}})
    await registerImage(moto, {name: 'web-other', tags: {'muster:group': 'web', 'muster:project': 'other'}})
    // A stack for a group that then leaves the nodes file: an orphan.
    expect(project.muster('preview', 'gone').code).to.equal(0)
    const nodesFile = join(project.dir, 'nodes.json')
    const nodes = JSON.parse(readFileSync(nodesFile, 'utf8')) as Record<string, unknown>
    delete nodes.gone
    writeFileSync(nodesFile, JSON.stringify(nodes))

    // The fleet's ASG in moto (the AWS provider plugin is not available to the engine here).
    const autoscaling = new AutoScalingClient({region: 'us-east-1', endpoint: moto.endpoint, credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}})
    try {
      await autoscaling.send(new CreateLaunchConfigurationCommand({LaunchConfigurationName: 'web-lc', ImageId: ami, InstanceType: 't3.micro'}))
      await autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: 'web',
          LaunchConfigurationName: 'web-lc',
          MinSize: 2,
          MaxSize: 2,
          DesiredCapacity: 2,
          AvailabilityZones: ['us-east-1a'],
          Tags: [{Key: 'group', Value: 'web', PropagateAtLaunch: true}],
        }),
      )
    } finally {
      autoscaling.destroy()
    }

    // The registry: two live nodes of web (one whose last provision failed), web's release, and
    // two deploys of web, the newer with one node ok and one failed.
    const lease = /lease ([0-9a-f]+) granted/.exec(etcdctl('lease', 'grant', '300'))?.[1] as string
    const prefix = '/muster/muster/'
    const node = (name: string, ok: boolean): string =>
      JSON.stringify({node: name, group: 'web', address: '10.0.0.1', services: [], dependsOn: [], since: '2026-11-25T18:00:00Z',
        provision: {state: ok ? 'idle' : 'failed', ok, reason: 'boot', startedAt: '2026-11-25T18:00:00Z', finishedAt: '2026-11-25T18:01:00Z', revision: ok ? 5 : 0, message: ok ? null : 'chef failed'}})
    etcdctl('put', `--lease=${lease}`, `${prefix}nodes/web-1`, node('web-1', true))
    etcdctl('put', `--lease=${lease}`, `${prefix}nodes/web-2`, node('web-2', false))
    // A record on no lease is not a live node (anyone could have written it): not counted.
    etcdctl('put', `${prefix}nodes/web-3`, node('web-3', true))
    const release = {digest: DIGEST, url: `s3://releases/muster/muster/releases/web/${DIGEST}.json`, sha256: DIGEST}
    etcdctl('put', `${prefix}groups/web/release`, JSON.stringify(release))
    const request = (id: string, at: string): string =>
      JSON.stringify({id, groups: ['web'], n: 1, maxErrors: 0, releases: {web: release}, targets: {web: ['web-1', 'web-2']}, requestedAt: at, requestedBy: 'ops@bastion', deadline: '2026-11-25T20:00:00Z'})
    etcdctl('put', `${prefix}deploys/${OLDER}`, request(OLDER, '2026-11-24T10:00:00Z'))
    etcdctl('put', `${prefix}deploys/${DEPLOY}`, request(DEPLOY, '2026-11-25T19:00:00Z'))
    const status = (name: string, state: string): string =>
      JSON.stringify({node: name, group: 'web', state, startedAt: '2026-11-25T19:00:01Z', finishedAt: '2026-11-25T19:00:09Z', message: state === 'failed' ? 'chef failed' : null, lease: null})
    etcdctl('put', `${prefix}rollout/${DEPLOY}/nodes/web-1`, status('web-1', 'ok'))
    etcdctl('put', `${prefix}rollout/${DEPLOY}/nodes/web-2`, status('web-2', 'failed'))
    etcdctl('put', `${prefix}rollout/${DEPLOY}/stop`, JSON.stringify({reason: 'max-errors', at: '2026-11-25T19:00:10Z', by: 'web-2'}))
  })

  after(async () => {
    project?.cleanup()
    await moto?.stop()
    await etcd?.stop()
  })

  it('--json: AMI and images, ASG counts, registry columns, release, last deploy and orphans', () => {
    const result = project.muster('status', '--json', '--etcd', etcd.endpoint)
    expect(result.code, result.stderr).to.equal(0)
    const status = JSON.parse(result.stdout) as StatusResult
    expect(status.groups.map((g) => g.group)).to.deep.equal(['web', 'plain'])
    expect(status.orphans).to.deep.equal(['gone'])
    expect(status.registry).to.deep.equal({project: 'muster', endpoints: [etcd.endpoint]})
    const web = status.groups[0] as StatusResult['groups'][number]
    expect(web.stack).to.equal(true)
    expect(web.stackAmi).to.equal(ami)
    expect(web.images).to.deep.include({count: 1, keep: 10, legacy: 1})
    expect((web.images as {newest: {id: string}}).newest.id).to.equal(ami)
    expect(web.asgs).to.deep.equal([{name: 'web', desired: 2, inService: 2, managed: false}])
    expect(web.registry).to.deep.include({registered: 2, healthy: 1, release: DIGEST})
    const last = (web.registry as {lastDeploy: {id: string; done: boolean; ok: boolean; stopped: string; counts: Record<string, number>}}).lastDeploy
    expect(last).to.deep.include({id: DEPLOY, done: true, ok: false, stopped: 'max-errors'})
    expect(last.counts).to.deep.include({ok: 1, failed: 1})
    const plain = status.groups[1] as StatusResult['groups'][number]
    expect(plain).to.deep.include({stack: false, stackAmi: null, asgs: []})
    expect(plain.images).to.deep.equal({newest: null, count: 0, keep: null, legacy: 0})
    expect(plain.registry).to.deep.equal({registered: 0, healthy: 0, release: null, lastDeploy: null})
  })

  it('text: one table per group, then the orphans', () => {
    const result = project.muster('status', 'web', '--etcd', etcd.endpoint)
    expect(result.code, result.stderr).to.equal(0)
    const out = result.stdout
    expect(out).to.include('web (us-east-1)')
    expect(out).to.match(new RegExp(`AMI +${ami} \\(newest of 1, keeps 10\\); 1 legacy image \\(muster packer:adopt web\\)`))
    expect(out).to.match(/ASG +web: 2 desired, 2 in service \(not in the stack\)/)
    expect(out).to.match(/NODES +2 registered, 1 healthy/)
    expect(out).to.match(/RELEASE +aaaaaaaaaaaa/)
    expect(out).to.match(new RegExp(`LAST DEPLOY +${DEPLOY} failed \\(max-errors\\): 1 ok, 1 failed`))
    expect(out).not.to.include('plain')
    const all = project.muster('status', '--etcd', etcd.endpoint)
    expect(all.stdout).to.include('plain (us-east-1, no stack yet)')
    expect(all.stdout).to.include('Stacks with no group in nodes.json (orphans): gone')
    const orphan = project.muster('status', 'gone', '--json')
    expect(orphan.code, orphan.stderr).to.equal(0)
    expect((JSON.parse(orphan.stdout) as StatusResult).orphans).to.deep.equal(['gone'])
  })

  it('without a registry its columns are unknown and status still succeeds; an unreachable one says why', () => {
    const result = project.muster('status', 'web')
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.match(/NODES +unknown: no registry given \(--etcd or MUSTER_ETCD_ENDPOINTS\)/)
    expect(result.stdout).to.match(/RELEASE +unknown/)
    expect(result.stdout).to.match(/ASG +web: 2 desired, 2 in service/)
    const down = project.muster('status', 'web', '--json', '--etcd', 'http://127.0.0.1:9')
    expect(down.code, down.stderr).to.equal(0)
    const web = (JSON.parse(down.stdout) as StatusResult).groups[0]
    expect((web?.registry as {unknown: string}).unknown).to.include('cannot reach the registry at http://127.0.0.1:9')
  })
})
