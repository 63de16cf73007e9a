// packer:clean and packer:delete through the group's stack, end to end: real engine, real Packer
// and muster's retention against moto.
import {DescribeImagesCommand, DescribeSnapshotsCommand} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {motoEc2, type MotoServer} from '../support/moto.js'
import {startStackProject, type MusterProject} from '../support/project.js'

describe('retiring images through the stack (integration)', function () {
  this.timeout(300_000)
  let moto: MotoServer
  let project: MusterProject

  before(async function () {
    ({moto, project} = await startStackProject(this, {web: {}}))
  })

  after(async () => {
    project?.cleanup()
    await moto?.stop()
  })

  const images = async (): Promise<Array<{id: string; snapshots: string[]}>> => {
    const out = await motoEc2(moto).send(new DescribeImagesCommand({Owners: ['self'], Filters: [{Name: 'tag:muster:group', Values: ['web']}]}))
    return (out.Images ?? []).map((i) => ({id: i.ImageId ?? '', snapshots: (i.BlockDeviceMappings ?? []).flatMap((b) => (b.Ebs?.SnapshotId ? [b.Ebs.SnapshotId] : []))}))
  }
  const snapshotExists = async (id: string): Promise<boolean> => {
    try {
      const out = await motoEc2(moto).send(new DescribeSnapshotsCommand({SnapshotIds: [id]}))
      return (out.Snapshots ?? []).length > 0
    } catch {
      return false
    }
  }
  const bake = (cookbook: string): string => {
    project.writeCookbook(cookbook)
    const result = project.muster('packer:run', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    return String((JSON.parse(result.stdout) as {groups: Array<{outputs?: {ami?: string}}>}).groups[0]?.outputs?.ami)
  }

  it('packer:clean -n 1 keeps the newest image, records N, and the next bake applies it again', async () => {
    const first = bake('# 1\n')
    const second = bake('# 2\n')
    expect((await images()).map((i) => i.id).sort()).to.deep.equal([first, second].sort())
    const oldSnapshots = (await images()).find((i) => i.id === first)?.snapshots ?? []
    expect(oldSnapshots.length).to.be.greaterThan(0)

    const dry = project.muster('packer:clean', 'web', '-n', '1', '--dry-run')
    expect(dry.code, dry.stderr).to.equal(0)
    expect(dry.stdout).to.match(new RegExp(`would remove\\s+${first}`))
    expect((await images()).map((i) => i.id).sort()).to.deep.equal([first, second].sort())

    const clean = project.muster('packer:clean', 'web', '-n', '1', '--yes')
    expect(clean.code, clean.stderr).to.equal(0)
    expect((await images()).map((i) => i.id)).to.deep.equal([second])
    for (const snapshot of oldSnapshots) expect(await snapshotExists(snapshot), snapshot).to.equal(false)
    expect(readFileSync(join(project.dir, 'stacks', 'Pulumi.web.yaml'), 'utf8')).to.match(/muster:keep: "1"/)

    // Retention runs after every bake with the recorded N.
    const third = bake('# 3\n')
    expect((await images()).map((i) => i.id)).to.deep.equal([third])
  })

  it('packer:delete removes every image, the bake part and the template, and nothing else', async () => {
    expect(existsSync(join(project.dir, 'packer', 'web.pkr.json'))).to.equal(true)
    const refused = project.muster('packer:delete', 'web')
    expect(refused.code).to.equal(1)
    expect(refused.stderr).to.include('--yes')
    expect((await images()).length).to.equal(1)

    const result = project.muster('packer:delete', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(await images()).to.deep.equal([])
    expect(existsSync(join(project.dir, 'packer', 'web.pkr.json'))).to.equal(false)
    expect(existsSync(join(project.dir, 'roles', 'web.json'))).to.equal(true)
    const config = readFileSync(join(project.dir, 'stacks', 'Pulumi.web.yaml'), 'utf8')
    expect(config).to.match(/muster:bake: "false"/)
    const up = project.muster('preview', 'web')
    expect(up.code, up.stdout + up.stderr).to.equal(0)
  })
})
