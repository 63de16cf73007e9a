// The release's pure parts: the manifest built from the resolved model (src/release/build.ts) and
// the cookbooks tarball (src/release/pack.ts): same input, same bytes, same sha256.
import {expect} from 'chai'
import {chmodSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {list} from 'tar'

import {UserError} from '../../src/errors.js'
import type {NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'
import {buildRelease, canonicalJson, cookbooksKey, encodeManifest, manifestKey, parseManifest, sha256Hex} from '../../src/release/build.js'
import {packCookbooks} from '../../src/release/pack.js'
import {makeTempDir, removeDir} from '../support/cli.js'

const machine = {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}

function load(value: Record<string, unknown>): NodesFile {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value, null, 2)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.path.join('.')}: ${d.message}`).join('\n'))
  return result.nodes
}

const NODES = {
  __base__: {...machine, run_list: ['recipe[base]'], services: {api: {port: 8080, depends_on: ['db']}}},
  db: {run_list: ['recipe[shop-service::db]']},
  cache: {run_list: ['recipe[shop-service::cache]']},
  web: {description: 'web tier', autoscale: {timeout: 120, node_min: 1, node_max: 3}, run_list: ['recipe[shop-service::api]', 'recipe[nginx]'], depends_on: ['cache'], default_attributes: {b: 1, a: 2}},
}

describe('release manifest (src/release/build.ts)', () => {
  const nodes = load(NODES)
  const web = nodes.groups.get('web')
  if (!web) throw new Error('no web')
  const cookbooks = {url: 's3://bucket-a/muster/p/cookbooks/abc.tgz', sha256: 'a'.repeat(64), bytes: 10}

  it('holds the role and dna the artifact generators give, and the agent settings from the services', () => {
    const {manifest} = buildRelease('p', web, cookbooks, new Date('2026-01-01T00:00:00Z'))
    expect(manifest.role).to.include({name: 'role-web', description: 'web tier'})
    expect(manifest.role.run_list).to.deep.equal(['recipe[base::default]', 'recipe[shop-service::api]', 'recipe[nginx::default]'])
    expect(manifest.dna).to.deep.equal({id: 'web', run_list: ['role[role-web]']})
    expect(manifest.agent).to.deep.equal({services: [{name: 'api', cookbook: 'shop-service', port: 8080}], dependsOn: ['cache', 'db']})
    expect(manifest.cookbooks).to.deep.equal(cookbooks)
    expect(manifest).to.include({format: 1, project: 'p', group: 'web', createdAt: '2026-01-01T00:00:00.000Z'})
  })

  it('encodes to the same bytes and digest for the same input, whatever the key order', () => {
    const a = buildRelease('p', web, cookbooks, new Date('2026-01-01T00:00:00Z'))
    const b = buildRelease('p', load(JSON.parse(JSON.stringify(NODES)) as Record<string, unknown>).groups.get('web') ?? web, cookbooks, new Date('2026-01-01T00:00:00Z'))
    expect(a.bytes.equals(b.bytes)).to.equal(true)
    expect(a.digest).to.equal(sha256Hex(a.bytes)).and.to.match(/^[0-9a-f]{64}$/)
    expect(canonicalJson({b: 1, a: {d: 1, c: [2, {f: 1, e: 2}]}})).to.equal('{\n  "a": {\n    "c": [\n      2,\n      {\n        "e": 2,\n        "f": 1\n      }\n    ],\n    "d": 1\n  },\n  "b": 1\n}\n')
  })

  it('keeps the previous release (and its digest) when nothing but the time differs; a change makes a new one', () => {
    const first = buildRelease('p', web, cookbooks, new Date('2026-01-01T00:00:00Z'))
    const parsed = parseManifest(first.bytes)
    expect(parsed).to.not.equal(undefined)
    const again = buildRelease('p', web, cookbooks, new Date('2026-02-01T00:00:00Z'), parsed)
    expect(again.digest).to.equal(first.digest)
    const changed = buildRelease('p', web, {...cookbooks, sha256: 'b'.repeat(64)}, new Date('2026-02-01T00:00:00Z'), parsed)
    expect(changed.digest).to.not.equal(first.digest)
    expect(changed.manifest.createdAt).to.equal('2026-02-01T00:00:00.000Z')
    expect(encodeManifest(changed.manifest).digest).to.equal(changed.digest)
  })

  it('names content-addressed keys', () => {
    expect(manifestKey('p', 'web', 'd'.repeat(64))).to.equal(`muster/p/releases/web/${'d'.repeat(64)}.json`)
    expect(cookbooksKey('p', 'c'.repeat(64))).to.equal(`muster/p/cookbooks/${'c'.repeat(64)}.tgz`)
    expect(parseManifest(Buffer.from('not json'))).to.equal(undefined)
    expect(parseManifest(Buffer.from('{"format":2}'))).to.equal(undefined)
  })
})

describe('cookbooks tarball (src/release/pack.ts)', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) removeDir(d)
  })

  /** The same tree, written in a different order, with different times and umask-ish modes. */
  function tree(order: 'forward' | 'backward', mode: number): string {
    const dir = makeTempDir('pack-')
    dirs.push(dir)
    const files: Array<[string, string]> = [
      ['cookbooks/nginx/recipes/default.rb', 'package "nginx"\n'],
      ['cookbooks/nginx/metadata.rb', 'name "nginx"\n'],
      ['cookbooks/base/recipes/default.rb', 'package "fail2ban"\n'],
      ['cookbooks/base/files/run.sh', '#!/bin/sh\n'],
    ]
    for (const [path, text] of order === 'forward' ? files : [...files].reverse()) {
      mkdirSync(join(dir, path, '..'), {recursive: true})
      writeFileSync(join(dir, path), text)
      chmodSync(join(dir, path), mode)
      const t = order === 'forward' ? new Date('2020-01-01') : new Date()
      utimesSync(join(dir, path), t, t)
    }
    chmodSync(join(dir, 'cookbooks/base/files/run.sh'), mode | 0o111)
    return dir
  }

  it('packs the same tree to the same bytes (order of creation, mtimes and group/other bits aside)', async () => {
    const a = await packCookbooks(tree('forward', 0o644))
    const b = await packCookbooks(tree('backward', 0o664))
    expect(a).to.not.equal(null)
    expect(a?.sha256).to.equal(b?.sha256)
    expect(a?.bytes.equals(b?.bytes ?? Buffer.alloc(0))).to.equal(true)
    expect(a?.sha256).to.equal(sha256Hex(a?.bytes ?? ''))
  })

  it('holds sorted cookbooks/ entries with normalised modes and no owner', async () => {
    const dir = tree('forward', 0o600)
    const packed = await packCookbooks(dir)
    const file = join(dir, 'out.tgz')
    writeFileSync(file, packed?.bytes ?? Buffer.alloc(0))
    const seen: Array<{path: string; mode: number; uid: number | undefined; mtime: string | undefined}> = []
    await list({file, onReadEntry: (e) => seen.push({path: e.path, mode: e.mode ?? -1, uid: e.uid, mtime: e.mtime?.toISOString()})})
    expect(seen.map((e) => e.path)).to.deep.equal([
      'base/', 'base/files/', 'base/files/run.sh', 'base/recipes/', 'base/recipes/default.rb',
      'nginx/', 'nginx/metadata.rb', 'nginx/recipes/', 'nginx/recipes/default.rb',
    ])
    expect(seen.find((e) => e.path.endsWith('run.sh'))?.mode).to.equal(0o755)
    expect(seen.find((e) => e.path.endsWith('metadata.rb'))?.mode).to.equal(0o644)
    expect(seen.find((e) => e.path === 'base/')?.mode).to.equal(0o755)
    expect(seen.every((e) => e.uid === undefined)).to.equal(true)
  })

  it('changes its sha256 when one byte of one file changes', async () => {
    const dir = tree('forward', 0o644)
    const before = await packCookbooks(dir)
    writeFileSync(join(dir, 'cookbooks/nginx/metadata.rb'), 'name "nginy"\n')
    const after = await packCookbooks(dir)
    expect(after?.sha256).to.not.equal(before?.sha256)
  })

  it('packs a hard link, and a symlink to a file inside cookbooks/, as the file it is (nodes unpack files and directories only)', async () => {
    const a = tree('forward', 0o644)
    const b = tree('forward', 0o644)
    linkSync(join(a, 'cookbooks/nginx/metadata.rb'), join(a, 'cookbooks/nginx/zz.rb'))
    symlinkSync('../nginx/metadata.rb', join(a, 'cookbooks/base/link.rb'))
    writeFileSync(join(b, 'cookbooks/nginx/zz.rb'), 'name "nginx"\n')
    writeFileSync(join(b, 'cookbooks/base/link.rb'), 'name "nginx"\n')
    const packed = await packCookbooks(a)
    expect(packed?.sha256).to.equal((await packCookbooks(b))?.sha256)
    const file = join(a, 'out.tgz')
    writeFileSync(file, packed?.bytes ?? Buffer.alloc(0))
    const types: string[] = []
    await list({file, onReadEntry: (e) => types.push(e.type)})
    expect([...new Set(types)].sort()).to.deep.equal(['Directory', 'File'])
  })

  it('refuses a symlink to a directory, and a dangling one', async () => {
    const dir = tree('forward', 0o644)
    symlinkSync('../nginx', join(dir, 'cookbooks/base/loop'))
    expect(await packCookbooks(dir).then(() => 'packed', (e: Error) => e.message)).to.equal('cookbooks/base/loop is a symlink to a directory (../nginx)')
    const dangling = tree('forward', 0o644)
    symlinkSync('gone.rb', join(dangling, 'cookbooks/base/x.rb'))
    expect(await packCookbooks(dangling).then(() => 'packed', (e: Error) => e.message)).to.equal('cookbooks/base/x.rb is a symlink to gone.rb, which does not exist')
  })

  it('refuses a symlink that leaves cookbooks/, naming it', async () => {
    const dir = tree('forward', 0o644)
    symlinkSync('../../Pulumi.yaml', join(dir, 'cookbooks/base/secret'))
    const error = await packCookbooks(dir).then(() => undefined, (e: unknown) => e)
    expect(error).to.be.instanceOf(UserError)
    expect((error as Error).message).to.contain('cookbooks/base/secret is a symlink to ../../Pulumi.yaml, outside cookbooks/')
    const abs = tree('forward', 0o644)
    symlinkSync('/etc/passwd', join(abs, 'cookbooks/pw'))
    expect(await packCookbooks(abs).then(() => 'packed', (e: Error) => e.message)).to.contain('outside cookbooks/')
  })

  it('is null for a project without cookbooks/, or with an empty one', async () => {
    const dir = makeTempDir('pack-')
    dirs.push(dir)
    expect(await packCookbooks(dir)).to.equal(null)
    mkdirSync(join(dir, 'cookbooks'))
    expect(await packCookbooks(dir)).to.equal(null)
  })
})

describe('release_bucket in the nodes file', () => {
  const check = (value: Record<string, unknown>) => validateNodes(parseSource('nodes.json', JSON.stringify(value, null, 2)))

  it('is read from __base__', () => {
    const result = check({__base__: {...machine, release_bucket: 'my-releases'}, web: {}})
    expect(result.ok && result.nodes.releaseBucket).to.equal('my-releases')
    const none = check({__base__: machine, web: {}})
    expect(none.ok && none.nodes.releaseBucket).to.equal(undefined)
  })

  it('is refused in a group, with its place', () => {
    const result = check({__base__: machine, web: {release_bucket: 'my-releases'}})
    expect(result.ok).to.equal(false)
    expect(result.ok ? [] : result.diagnostics.map((d) => `${d.position?.line}:${d.position?.column} ${d.path.join('.')}: ${d.message}`)).to.deep.equal([
      '8:5 web.release_bucket: release_bucket is a setting of the whole fleet; set it in __base__ only',
    ])
  })

  it('must be a bucket name', () => {
    const result = check({__base__: {...machine, release_bucket: 's3://my-releases/x'}, web: {}})
    expect(result.ok ? [] : result.diagnostics.map((d) => `${d.path.join('.')}: ${d.message}`)).to.deep.equal([
      '__base__.release_bucket: expected an S3 bucket name (3–63 of a–z 0–9 . -, no s3:// and no path), such as "my-releases", got string "s3://my-releases/x"',
    ])
  })
})

describe('registry in the nodes file', () => {
  const check = (value: Record<string, unknown>) => validateNodes(parseSource('nodes.json', JSON.stringify(value, null, 2)))
  const problems = (value: Record<string, unknown>) => {
    const result = check(value)
    return result.ok ? [] : result.diagnostics.map((d) => `${d.position?.line}:${d.position?.column} ${d.path.join('.')}: ${d.message}`)
  }

  it('is read from __base__', () => {
    const result = check({__base__: {...machine, registry: {endpoints: ['http://10.0.0.5:2379', 'https://etcd.internal:2379'], project: 'shop'}}, web: {}})
    expect(result.ok && result.nodes.registry).to.deep.equal({endpoints: ['http://10.0.0.5:2379', 'https://etcd.internal:2379'], project: 'shop'})
    const none = check({__base__: machine, web: {}})
    expect(none.ok && none.nodes.registry).to.equal(undefined)
  })

  it('is refused in a group, with its place', () => {
    expect(problems({__base__: machine, web: {registry: {endpoints: ['http://10.0.0.5:2379']}}})).to.deep.equal([
      '8:5 web.registry: registry is a setting of the whole fleet; set it in __base__ only',
    ])
  })

  it('refuses endpoints with a user name or password, a path, or no port, and unknown keys', () => {
    const fake = ['user', 'pw'].join(':')
    const bad = problems({__base__: {...machine, registry: {endpoints: [`http://${fake}@10.0.0.5:2379`, 'http://10.0.0.5:2379/v3', 'http://10.0.0.5', 'http://10.0.0.5:99999'], token: 'x'}}, web: {}})
    expect(bad.map((p) => p.replace(/^\d+:\d+ /, '').replace(/, got .*$/, ''))).to.deep.equal([
      '__base__.registry.endpoints.0: expected an etcd endpoint http(s)://HOST:PORT, with no user name, password or path, such as "http://10.0.0.5:2379"',
      '__base__.registry.endpoints.1: expected an etcd endpoint http(s)://HOST:PORT, with no user name, password or path, such as "http://10.0.0.5:2379"',
      '__base__.registry.endpoints.2: expected an etcd endpoint http(s)://HOST:PORT, with no user name, password or path, such as "http://10.0.0.5:2379"',
      '__base__.registry.token: unknown key "token" (known keys: endpoints, project)',
    ])
    // Past the schema's shape, parseEndpoints' rules (a port out of range is no URL).
    expect(problems({__base__: {...machine, registry: {endpoints: ['http://10.0.0.5:99999']}}, web: {}}).map((p) => p.replace(/^\d+:\d+ /, ''))).to.deep.equal([
      '__base__.registry.endpoints.0: "http://10.0.0.5:99999" is not an etcd endpoint; write it as http://HOST:PORT (https:// for TLS)',
    ])
    expect(problems({__base__: {...machine, registry: {endpoints: []}}, web: {}}).map((p) => p.replace(/^\d+:\d+ /, '').replace(/, got .*$/, ''))).to.deep.equal([
      '__base__.registry.endpoints: expected at least one etcd endpoint',
    ])
  })
})
