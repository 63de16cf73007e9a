// Two muster projects (two Pulumi projects, each with its embedded backend) with a group of the same
// name in one moto account, baked for real (built CLI → Pulumi engine → Packer → moto): each
// project's retention, packer:delete and packer:adopt touch only its own images; a legacy image
// (tagged with the group alone, as muster tagged images before they carried the project) is listed
// and never deleted until adopted. Also: the image's cookbooks hash, and that a cookbook the
// group's run list does not use changes nothing.
import {DescribeImagesCommand} from '@aws-sdk/client-ec2'
import {expect} from 'chai'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {cookbooksHash, readCookbookTree} from '../../src/artifacts/cookbooks.js'
import {DEFAULT_PROJECT_YAML} from '../../src/stacks/workspace.js'
import type {CliResult} from '../support/cli.js'
import {motoEc2, type MotoServer, registerImage} from '../support/moto.js'
import {createMusterProject, type MusterProject, startStackProject} from '../support/project.js'

describe('two projects, one account: images kept apart (integration)', function () {
  this.timeout(600_000)
  let moto: MotoServer
  let alpha: MusterProject
  let beta: MusterProject
  let betaAmi = ''
  let legacyAmi = ''
  const alphaAmis: string[] = []

  before(async function () {
    ({moto, project: alpha} = await startStackProject(this, {web: {description: 'web nodes'}}))
    beta = createMusterProject(moto, {web: {description: 'their web nodes'}})
    for (const [project, name] of [[alpha, 'alpha'], [beta, 'beta']] as const) {
      writeFileSync(join(project.dir, 'Pulumi.yaml'), DEFAULT_PROJECT_YAML.replace(/^name: .*$/m, `name: ${name}`))
    }
  })

  after(async () => {
    alpha?.cleanup()
    beta?.cleanup()
    await moto?.stop()
  })

  /** Every image tagged muster:group=web in the account, id → tags. */
  const webImages = async (): Promise<Map<string, Record<string, string>>> => {
    const ec2 = motoEc2(moto)
    try {
      const out = await ec2.send(new DescribeImagesCommand({Owners: ['self'], Filters: [{Name: 'tag:muster:group', Values: ['web']}]}))
      return new Map((out.Images ?? []).map((i) => [i.ImageId ?? '', Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']))]))
    } finally {
      ec2.destroy()
    }
  }
  const amiOf = (result: CliResult): string => {
    const json = JSON.parse(result.stdout) as {groups: Array<{outputs?: {ami?: string}}>}
    return String(json.groups[0]?.outputs?.ami)
  }
  const bake = (project: MusterProject): string => {
    const result = project.muster('packer:run', 'web', '--yes', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const ami = amiOf(result)
    expect(ami).to.match(/^ami-[0-9a-f]+$/)
    return ami
  }

  it('each image carries its project, its template hash and the hash of the cookbooks its run list uses', async () => {
    betaAmi = bake(beta)
    alphaAmis.push(bake(alpha))
    const images = await webImages()
    expect(images.get(betaAmi)).to.include({'muster:group': 'web', 'muster:project': 'beta'})
    const tags = images.get(alphaAmis[0] as string) ?? {}
    expect(tags).to.include({'muster:group': 'web', 'muster:project': 'alpha'})
    expect(tags['muster:template-hash']).to.match(/^[0-9a-f]{16}$/)
    // Packer got the hash through -var: the tag is the hash of cookbooks/web (recipe[web]'s closure).
    expect(tags['muster:cookbooks-hash']).to.equal(cookbooksHash(['recipe[web]'], readCookbookTree(join(alpha.dir, 'cookbooks'))))
  })

  it('a change in a cookbook the run list does not use leaves preview at no changes; one in its own cookbook rebakes', () => {
    mkdirSync(join(alpha.dir, 'cookbooks', 'unrelated', 'recipes'), {recursive: true})
    writeFileSync(join(alpha.dir, 'cookbooks', 'unrelated', 'recipes', 'default.rb'), 'package "cowsay"\n')
    const unchanged = alpha.muster('preview', 'web')
    expect(unchanged.code, unchanged.stderr).to.equal(0)
    expect(`${unchanged.stdout}${unchanged.stderr}`).to.not.match(/to replace/)

    alpha.writeCookbook('package "nginx"\npackage "curl"\n')
    const changed = alpha.muster('preview', 'web')
    expect(changed.code, changed.stderr).to.equal(2)
    expect(changed.stdout).to.match(/packer-build \(triggers\)/)
    alphaAmis.push(bake(alpha))
  })

  it("retention in one project never touches another project's image, and lists a legacy image without deleting it", async () => {
    legacyAmi = await registerImage(moto, {name: 'web-legacy', tags: {'muster:group': 'web'}})
    const dry = alpha.muster('packer:retain', 'web', '--keep', '1', '--dry-run', '--json')
    expect(dry.code, dry.stderr).to.equal(0)
    const planned = JSON.parse(dry.stdout) as {project: string; removed: Array<{id: string}>; legacy: Array<{id: string}>; otherProjects: number}
    expect(planned).to.include({project: 'alpha', otherProjects: 1})
    expect(planned.removed.map((r) => r.id)).to.deep.equal([alphaAmis[0]])
    expect(planned.legacy.map((r) => r.id)).to.deep.equal([legacyAmi])

    // Through the stack's retention part, as after a bake.
    const clean = alpha.muster('packer:clean', 'web', '-n', '1', '--yes')
    expect(clean.code, clean.stderr).to.equal(0)
    const images = await webImages()
    expect([...images.keys()].sort()).to.deep.equal([alphaAmis[1], betaAmi, legacyAmi].sort())

    const listed = alpha.muster('packer:retain', 'web', '--keep', '1')
    expect(listed.code, listed.stderr).to.equal(0)
    expect(listed.stdout).to.match(new RegExp(`^web\\s+legacy\\s+${legacyAmi}\\s+web-legacy\\s+\\S+\\s+untagged legacy image \\(muster:group, no muster:project\\): not ours to touch; adopt it with muster packer:adopt web$`, 'm'))
    expect(listed.stderr).to.include('web: 1 kept, 0 deregistered, 0 snapshots deleted; 1 untagged legacy image left alone (muster packer:adopt web takes them in); 1 image of other projects or environments left alone')
  })

  it('packer:delete lists the legacy image and leaves it; packer:adopt tags it after a confirmation and refuses another project\'s image', async () => {
    const dryDelete = alpha.muster('packer:delete', 'web', '--dry-run')
    expect(dryDelete.code, dryDelete.stderr).to.equal(0)
    expect(dryDelete.stderr).to.include(`web: 1 image(s) of project alpha to deregister (${alphaAmis[1]})`)
    expect(dryDelete.stderr).to.include(`untagged legacy image(s) (${legacyAmi}) carry muster:group but no muster:project: not ours to touch`)

    const list = alpha.muster('packer:adopt', 'web', '--dry-run')
    expect(list.code, list.stderr).to.equal(0)
    expect(list.stdout).to.match(new RegExp(`^web\\s+would adopt\\s+${legacyAmi}\\s+web-legacy`, 'm'))
    const unattended = alpha.muster('packer:adopt', 'web')
    expect(unattended.code).to.equal(1)
    expect(unattended.stderr).to.include(`muster packer:adopt web --yes`)
    expect((await webImages()).get(legacyAmi)).to.not.have.property('muster:project')

    const theirs = alpha.muster('packer:adopt', 'web', betaAmi, legacyAmi, '--yes')
    expect(theirs.code).to.equal(1)
    expect(theirs.stderr).to.include(`${betaAmi}: belongs to project beta, not alpha`)
    expect((await webImages()).get(legacyAmi)).to.not.have.property('muster:project')

    const adopted = alpha.muster('packer:adopt', 'web', '--yes', '--json')
    expect(adopted.code, adopted.stderr).to.equal(0)
    expect((JSON.parse(adopted.stdout) as {adopted: Array<{id: string}>}).adopted.map((i) => i.id)).to.deep.equal([legacyAmi])
    expect((await webImages()).get(legacyAmi)).to.include({'muster:project': 'alpha'})

    // Now the project's: packer:delete takes it with alpha's own image, and beta's stays.
    const deleted = alpha.muster('packer:delete', 'web', '--yes')
    expect(deleted.code, deleted.stderr).to.equal(0)
    expect([...(await webImages()).keys()]).to.deep.equal([betaAmi])
    const betaRetain = beta.muster('packer:retain', 'web', '--keep', '1', '--json')
    expect(betaRetain.code, betaRetain.stderr).to.equal(0)
    expect((JSON.parse(betaRetain.stdout) as {kept: Array<{id: string}>}).kept.map((i) => i.id)).to.deep.equal([betaAmi])
  })
})
