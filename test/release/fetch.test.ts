// The node's download, check and unpack of a release (src/release/fetch.ts), with the bucket held
// in memory: digests, the S3 layout a request may name, hostile tarballs (.., absolute paths,
// symlinks, hard links) refused whole with nothing written, and the atomic switch of `current`.
import {randomBytes} from 'node:crypto'
import {existsSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {create} from 'tar'

import {loadNodes} from '../../src/nodes/load.js'
import {nodeGroups} from '../../src/nodes/model.js'
import type {ReleaseBucket} from '../../src/release/bucket.js'
import {buildRelease as buildRealRelease, cookbooksKey, sha256Hex} from '../../src/release/build.js'
import {packCookbooks as packRealCookbooks} from '../../src/release/pack.js'
import {uploadReleases} from '../../src/release/upload.js'
import {currentDigest, entryProblem, fetchRelease, MANIFEST_CAP_BYTES, parseReleaseManifest, readCurrentRelease, releaseRunList, ReleaseRefused, switchCurrent} from '../../src/release/fetch.js'
import {repoRoot} from '../support/cli.js'
import {makeTempDir, removeDir} from '../support/process.js'
import {type BuiltRelease, buildRelease, packCookbooks} from '../support/release.js'

const BUCKET = 'muster-releases'

function memoryBucket(objects: Map<string, Buffer>, seen: Array<{key: string; maxBytes: number | undefined}> = []): (name: string) => ReleaseBucket {
  return (bucket) => ({
    bucket,
    async get(key, maxBytes) {
      seen.push({key, maxBytes})
      const body = objects.get(key)
      if (!body) throw new Error(`s3://${bucket}/${key} does not exist`)
      return body
    },
    exists: async (key) => objects.has(key),
    put: async (key, body) => {
      objects.set(key, body)
    },
  })
}

function store(release: BuiltRelease, objects = new Map<string, Buffer>()): Map<string, Buffer> {
  objects.set(release.manifestKey, release.bytes)
  if (release.tarball && release.tarballKey) objects.set(release.tarballKey, release.tarball)
  return objects
}

async function packDir(dir: string, entries: string[], options: {preservePaths?: boolean} = {}): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of create({gzip: true, cwd: dir, portable: true, preservePaths: options.preservePaths ?? false}, entries) as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

describe('release fetch: verify, unpack safely, switch atomically', function () {
  let dir: string
  let stateDir: string
  const expectGroup = {project: 'p', group: 'web'}

  beforeEach(function () {
    dir = makeTempDir('fetch')
    stateDir = join(dir, 'state')
    mkdirSync(stateDir)
  })

  afterEach(function () {
    removeDir(dir)
  })

  it('unpacks a good release beside the current one, with capped reads, and switches current to it', async function () {
    const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]'], services: [{name: 'api', cookbook: 'shop-service', port: 80}], cookbooks: {'app/recipes/default.rb': 'log "hi"\n'}})
    const seen: Array<{key: string; maxBytes: number | undefined}> = []
    const installed = await fetchRelease(release.ref, {project: 'p', group: 'web', stateDir, openBucket: memoryBucket(store(release), seen)})
    expect(installed.dir).to.equal(join(stateDir, 'releases', release.ref.digest))
    expect(readFileSync(join(installed.dir, 'cookbooks', 'app', 'recipes', 'default.rb'), 'utf8')).to.equal('log "hi"\n')
    expect(JSON.parse(readFileSync(join(installed.dir, 'role.json'), 'utf8')).run_list).to.deep.equal(['recipe[app]'])
    expect(readFileSync(join(installed.dir, 'manifest.json'))).to.deep.equal(release.bytes)
    expect(seen.every((s) => s.maxBytes !== undefined)).to.equal(true)
    expect(seen[0]?.maxBytes).to.equal(MANIFEST_CAP_BYTES)
    expect(currentDigest(stateDir)).to.equal(undefined)
    await switchCurrent(stateDir, release.ref.digest)
    expect(readlinkSync(join(stateDir, 'current'))).to.equal(join('releases', release.ref.digest))
    expect(readCurrentRelease(stateDir, expectGroup)?.manifest.agent.services).to.deep.equal([{name: 'api', cookbook: 'shop-service', port: 80}])
    // Switching again replaces the link in one rename, leaving no temp link behind.
    await switchCurrent(stateDir, release.ref.digest)
    expect(readdirSync(stateDir).sort()).to.deep.equal(['current', 'releases'])
  })

  it('unpacks a cookbooks tarball over a megabyte by streaming, as a small one (which is unpacked at once)', async function () {
    // Random bytes do not compress: the tarball is over the size small ones are unpacked at once below.
    const big = randomBytes(1_200_000).toString('base64')
    const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]'], cookbooks: {'app/recipes/default.rb': 'log "hi"\n', 'app/files/blob.txt': big}})
    expect(release.tarball?.length).to.be.greaterThan(1024 * 1024)
    const installed = await fetchRelease(release.ref, {project: 'p', group: 'web', stateDir, openBucket: memoryBucket(store(release))})
    expect(readFileSync(join(installed.dir, 'cookbooks', 'app', 'files', 'blob.txt'), 'utf8')).to.equal(big)
    expect(readFileSync(join(installed.dir, 'cookbooks', 'app', 'recipes', 'default.rb'), 'utf8')).to.equal('log "hi"\n')
  })

  it('refuses a manifest whose bytes are not its digest, writing nothing', async function () {
    const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]']})
    const objects = store(release)
    objects.set(release.manifestKey, Buffer.concat([release.bytes, Buffer.from(' ')]))
    const error = await fetchRelease(release.ref, {project: 'p', group: 'web', stateDir, openBucket: memoryBucket(objects)}).catch((e: unknown) => e)
    expect(error).to.be.instanceOf(ReleaseRefused)
    expect((error as Error).message).to.match(/^digest mismatch/)
    expect(readdirSync(stateDir)).to.deep.equal([])
  })

  it('refuses a tarball whose bytes are not the manifest\'s sha256, writing nothing', async function () {
    const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]']})
    const objects = store(release)
    objects.set(release.tarballKey as string, await packCookbooks({'evil/recipes/default.rb': 'execute "rm -rf /"\n'}))
    const error = await fetchRelease(release.ref, {project: 'p', group: 'web', stateDir, openBucket: memoryBucket(objects)}).catch((e: unknown) => e)
    expect((error as Error).message).to.match(/^digest mismatch: s3:\/\/muster-releases\/muster\/p\/cookbooks\//)
    expect(readdirSync(stateDir)).to.deep.equal([])
  })

  it('refuses a release outside the layout instance:deploy writes, or outside MUSTER_RELEASE_BUCKET', async function () {
    const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]']})
    const open = memoryBucket(store(release))
    const other = {...release.ref, url: release.ref.url.replace('/releases/web/', '/releases/db/')}
    expect(((await fetchRelease(other, {project: 'p', group: 'web', stateDir, openBucket: open}).catch((e: unknown) => e)) as Error).message).to.contain('is not where instance:deploy puts')
    const refused = await fetchRelease(release.ref, {project: 'p', group: 'web', stateDir, openBucket: open, allowedBucket: 'another-bucket'}).catch((e: unknown) => e)
    expect((refused as Error).message).to.contain('is not in the release bucket another-bucket')
    // A manifest for another group (or project) is refused even at the right digest.
    const wrong = await fetchRelease(release.ref, {project: 'p', group: 'db', stateDir, openBucket: open}).catch((e: unknown) => e)
    expect((wrong as Error).message).to.contain('is not where')
    expect(readdirSync(stateDir)).to.deep.equal([])
  })

  for (const hostile of ['a path with ..', 'an absolute path', 'a symlink out of the tree', 'a hard link']) {
    it(`refuses a tarball with ${hostile}, unpacking nothing of it`, async function () {
      const src = join(dir, 'src')
      mkdirSync(join(src, 'app'), {recursive: true})
      writeFileSync(join(src, 'app', 'ok.rb'), 'ok\n')
      let tarball: Buffer
      if (hostile === 'a path with ..') {
        writeFileSync(join(dir, 'escape.txt'), 'out\n')
        tarball = await packDir(src, ['app', '../escape.txt'], {preservePaths: true})
      } else if (hostile === 'an absolute path') {
        writeFileSync(join(dir, 'abs.txt'), 'abs\n')
        tarball = await packDir(src, ['app', join(dir, 'abs.txt')], {preservePaths: true})
      } else if (hostile === 'a symlink out of the tree') {
        symlinkSync('/etc', join(src, 'app', 'etc'))
        tarball = await packDir(src, ['app'])
      } else {
        linkSync(join(src, 'app', 'ok.rb'), join(src, 'app', 'again.rb'))
        tarball = await packDir(src, ['app'])
      }
      const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]'], tarball})
      const error = await fetchRelease(release.ref, {project: 'p', group: 'web', stateDir, openBucket: memoryBucket(store(release))}).catch((e: unknown) => e)
      expect(error, String(error)).to.be.instanceOf(ReleaseRefused)
      expect((error as Error).message).to.contain('the cookbooks tarball is refused')
      expect(readdirSync(stateDir)).to.deep.equal([])
    })
  }

  it('takes what instance:deploy\'s own builder, packer and uploader make (this repo\'s nodes file and cookbooks)', async function () {
    const nodes = loadNodes({cwd: repoRoot})
    const group = nodeGroups(nodes)[0]
    if (!group) throw new Error('the repo\'s nodes file has no node group')
    const packed = await packRealCookbooks(repoRoot)
    const cookbooks = packed ? {url: `s3://${BUCKET}/${cookbooksKey('p', packed.sha256)}`, sha256: packed.sha256, bytes: packed.bytes.length} : null
    const built = buildRealRelease('p', group, cookbooks, new Date())
    const objects = new Map<string, Buffer>()
    const open = memoryBucket(objects)
    await uploadReleases(open(BUCKET), 'p', packed, new Map([[group.name, built]]))
    const ref = {digest: built.digest, sha256: sha256Hex(built.bytes), url: `s3://${BUCKET}/muster/p/releases/${group.name}/${built.digest}.json`}
    const installed = await fetchRelease(ref, {project: 'p', group: group.name, stateDir, openBucket: open})
    expect(installed.manifest.agent).to.deep.equal(built.manifest.agent)
    expect(releaseRunList(installed.manifest)).to.equal((built.manifest.role.run_list as string[]).join(','))
    for (const entry of packed?.entries ?? []) expect(existsSync(join(installed.dir, 'cookbooks', entry)), entry).to.equal(true)
  })

  it('names what is wrong with an entry', function () {
    expect(entryProblem('app/recipes/x.rb', 'File')).to.equal(undefined)
    expect(entryProblem('app/', 'Directory')).to.equal(undefined)
    expect(entryProblem('../x', 'File')).to.contain('leaves')
    expect(entryProblem('a/../../x', 'File')).to.contain('leaves')
    expect(entryProblem('/etc/passwd', 'File')).to.contain('absolute')
    expect(entryProblem('app/l', 'SymbolicLink')).to.contain('SymbolicLink')
    expect(entryProblem('app/l', 'Link')).to.contain('Link')
    expect(entryProblem('dev', 'CharacterDevice')).to.contain('CharacterDevice')
  })

  it('parses manifests defensively', async function () {
    const release = await buildRelease(BUCKET, {project: 'p', group: 'web', runList: ['recipe[app]']})
    const good = JSON.parse(release.bytes.toString()) as Record<string, unknown>
    const refuse = (change: Record<string, unknown>, pattern: RegExp): void => {
      expect(() => parseReleaseManifest(JSON.stringify({...good, ...change}), expectGroup)).to.throw(ReleaseRefused, pattern)
    }
    expect(parseReleaseManifest(release.bytes.toString(), expectGroup).group).to.equal('web')
    expect(() => parseReleaseManifest('[1]', expectGroup)).to.throw(ReleaseRefused, /top level/)
    refuse({format: 2}, /format/)
    refuse({project: 'q'}, /project/)
    refuse({group: 'db'}, /group/)
    refuse({role: {run_list: ['recipe[a],recipe[b]']}}, /run_list/)
    refuse({agent: {services: [{name: '../x', cookbook: 'c'}], dependsOn: []}}, /agent.services/)
    refuse({agent: {services: [{name: 'api', cookbook: 'c', port: 70000}], dependsOn: []}}, /port/)
    refuse({agent: {services: [], dependsOn: ['a/b']}}, /dependsOn/)
    refuse({cookbooks: {url: 's3://b/k', sha256: 'nothex', bytes: 1}}, /cookbooks/)
    refuse({createdAt: 'yesterday'}, /createdAt/)
  })
})
