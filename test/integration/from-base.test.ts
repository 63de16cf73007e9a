// from_base for real: the built CLI, the Pulumi engine, Packer and moto. packer:run with no GROUP
// bakes __base__ first and then the group built from it, from the image the base bake made; a new
// __base__ image makes that group stale in preview (the base image is one of its bake triggers).
//
// Packer talks to moto through startRootDeviceProxy (test/support/moto.ts): moto gives the images
// it bakes the root device type "standard", which Packer refuses as a source; the proxy answers
// "ebs" instead and changes nothing else.
import {DescribeImagesCommand} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {CliResult} from '../support/cli.js'
import {motoEc2, type MotoServer, registerImage, type RootDeviceProxy, startRootDeviceProxy} from '../support/moto.js'
import {type MusterProject, startStackProject} from '../support/project.js'

interface RunJson {
  groups: Array<{group: string; applied: boolean; outputs?: {ami?: string}}>
}
interface PreviewJson {
  sets: Array<{stack: string; counts: Record<string, number>; changes: Array<{name: string; op: string}>}>
  exitCode: number
}

describe('from_base: the base image first, and a new one makes its groups stale (integration)', function () {
  this.timeout(600_000)
  let moto: MotoServer
  let proxy: RootDeviceProxy
  let project: MusterProject
  let baseAmi = ''
  let webAmi = ''

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: {from_base: true}, plain: {}}))
    proxy = await startRootDeviceProxy(moto)
    // Every bake (the base's and the groups') reaches moto through the proxy.
    const file = join(project.dir, 'nodes.json')
    const nodes = JSON.parse(readFileSync(file, 'utf8')) as {__base__: {packer: Record<string, unknown>}}
    nodes.__base__.packer.custom_endpoint_ec2 = proxy.endpoint
    writeFileSync(file, JSON.stringify(nodes))
  })

  after(async () => {
    project?.cleanup()
    await proxy?.stop()
    await moto?.stop()
  })

  const images = async (group: string): Promise<Array<{id: string; created: string}>> => {
    const ec2 = motoEc2(moto)
    try {
      const out = await ec2.send(new DescribeImagesCommand({Owners: ['self'], Filters: [{Name: 'tag:muster:group', Values: [group]}]}))
      return (out.Images ?? []).map((i) => ({id: i.ImageId ?? '', created: i.CreationDate ?? ''}))
    } finally {
      ec2.destroy()
    }
  }
  const previewJson = (result: CliResult): PreviewJson => JSON.parse(result.stdout) as PreviewJson

  it('preview with no GROUP includes __base__, first', () => {
    // Nothing recorded yet: no changes, but the base's stack is there to review.
    const result = project.muster('preview', '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(previewJson(result).sets.map((s) => s.stack)).to.deep.equal(['__base__', 'web', 'plain'])
  })

  it('packer:run with no GROUP bakes __base__ first, then builds web from the image it made', async () => {
    const result = project.muster('packer:run', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const json = JSON.parse(result.stdout) as RunJson
    expect(json.groups.map((g) => g.group)).to.deep.equal(['__base__', 'web', 'plain'])
    baseAmi = String(json.groups[0]?.outputs?.ami)
    webAmi = String(json.groups[1]?.outputs?.ami)
    expect(baseAmi).to.match(/^ami-[0-9a-f]+$/)
    expect(webAmi).to.match(/^ami-[0-9a-f]+$/)
    expect(result.stderr).to.include('__base__ first: web builds from its image')
    // Packer's source_ami_filter found the base image this run baked (tags in moto, through the proxy).
    expect(result.stderr).to.match(new RegExp(`web \\| .*Found Image ID: ${baseAmi}`))
    expect(await proxy.rewrites()).to.be.greaterThan(0)
    expect((await images('__base__')).map((i) => i.id)).to.deep.equal([baseAmi])
  })

  it('then preview says no changes anywhere', () => {
    const result = project.muster('preview', '--json')
    expect(result.code, result.stdout).to.equal(0)
  })

  it('a new __base__ image makes web stale (and only web); packer:run web rebakes it from that image', async () => {
    // A base image baked elsewhere (another checkout of this project, by hand): newest of the project's.
    await new Promise((resolve) => setTimeout(resolve, 1100 - (Date.now() % 1000)))
    const newBase = await registerImage(moto, {name: '__base__ newer', tags: {'muster:group': '__base__', 'muster:project': 'muster'}})
    const stale = project.muster('preview', '--json')
    expect(stale.code, stale.stderr).to.equal(2)
    const sets = previewJson(stale).sets
    const replaced = (stack: string): string[] => (sets.find((s) => s.stack === stack)?.changes ?? []).filter((c) => c.op === 'replace').map((c) => c.name)
    expect(replaced('web')).to.include('packer-build')
    expect(replaced('plain')).to.deep.equal([])
    expect(replaced('__base__')).to.deep.equal([])

    const rebake = project.muster('packer:run', 'web', '--yes', '--json')
    expect(rebake.code, rebake.stderr).to.equal(0)
    const again = String((JSON.parse(rebake.stdout) as RunJson).groups[0]?.outputs?.ami)
    expect(again).to.not.equal(webAmi)
    expect(rebake.stderr).to.match(new RegExp(`web \\| .*Found Image ID: ${newBase}`))
    const settled = project.muster('preview', 'web')
    expect(settled.code, settled.stdout).to.equal(0)
  })
})
