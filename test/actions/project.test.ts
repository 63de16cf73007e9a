// Project: __base__ first in runs with no GROUP, and the base image from_base groups bake from,
// looked up once per run and region through an injected image store.
import {expect} from 'chai'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Project} from '../../src/actions/project.js'
import type {GroupImage, ImageStore} from '../../src/aws/ec2.js'

const image = (id: string, created: string, tags: Record<string, string>, state = 'available'): GroupImage => ({id, name: id, created, snapshotIds: [], state, tags})

describe('Project (base image and __base__ first)', () => {
  let dir: string
  const listed: string[] = []
  let images: GroupImage[] = []
  const openStore = (region: string): ImageStore & {close(): void} => ({
    async listGroupImages(group) {
      listed.push(`${region}:${group}`)
      return images
    },
    async imagesInUse() {
      return new Map()
    },
    async deregisterImage() {},
    async deleteSnapshot() {},
    async tagImages() {},
    close() {},
  })

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'muster-project-'))
    writeFileSync(join(dir, 'Pulumi.yaml'), 'name: alpha\n')
    writeFileSync(
      join(dir, 'nodes.json'),
      JSON.stringify({__base__: {region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-1'}, web: {from_base: true}, db: {}, eu: {from_base: true, region: 'eu-west-1'}}),
    )
    listed.length = 0
    images = []
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('puts __base__ first in a run with no GROUP when a group builds from it; named groups stay as named, __base__ first', () => {
    const project = new Project({cwd: dir, openStore}, {progress: () => {}})
    const names = (groups: ReadonlyArray<{name: string}>): string[] => groups.map((g) => g.name)
    expect(names(project.withBaseFirst(project.select(undefined), false))).to.deep.equal(['__base__', 'web', 'db', 'eu'])
    expect(names(project.withBaseFirst([project.group('db')], false))).to.deep.equal(['db'])
    expect(names(project.withBaseFirst([project.group('web')], true))).to.deep.equal(['web'])
    expect(names(project.withBaseFirst([project.group('web'), project.group('__base__')], true))).to.deep.equal(['__base__', 'web'])
  })

  it("a from_base group's inputs name the project's newest available base image, asked once per region until forgotten", async () => {
    images = [
      image('ami-old', '2026-01-01T00:00:00.000Z', {'muster:group': '__base__', 'muster:project': 'alpha'}),
      image('ami-new', '2026-01-03T00:00:00.000Z', {'muster:group': '__base__', 'muster:project': 'alpha'}),
      image('ami-pending', '2026-01-04T00:00:00.000Z', {'muster:group': '__base__', 'muster:project': 'alpha'}, 'pending'),
      image('ami-theirs', '2026-01-05T00:00:00.000Z', {'muster:group': '__base__', 'muster:project': 'beta'}),
      image('ami-legacy', '2026-01-06T00:00:00.000Z', {'muster:group': '__base__'}),
    ]
    const project = new Project({cwd: dir, openStore}, {progress: () => {}})
    expect(await project.contextInputs(project.group('web'))).to.deep.equal({baseImage: 'ami-new'})
    expect(await project.contextInputs(project.group('web'))).to.deep.equal({baseImage: 'ami-new'})
    expect(await project.contextInputs(project.group('db'))).to.deep.equal({})
    expect(listed).to.deep.equal(['us-east-1:__base__'])
    await project.contextInputs(project.group('eu'))
    expect(listed).to.deep.equal(['us-east-1:__base__', 'eu-west-1:__base__'])
    project.forgetBaseImages()
    images = []
    expect(await project.contextInputs(project.group('web'))).to.deep.equal({baseImage: ''})
  })
})
