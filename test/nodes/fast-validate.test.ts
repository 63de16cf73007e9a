// The compiled validator (dist/nodes/fast-validate.cjs) decides alone whether zod is loaded: it
// must accept exactly what the zod schema accepts, or a bad file would pass unexplained.
import {expect} from 'chai'
import fc from 'fast-check'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {GROUP_NAME, schemas} from '../../src/nodes/schema.js'
import {parseSource} from '../../src/nodes/source.js'
import {repoRoot} from '../support/cli.js'

const compiledPath = join(repoRoot, 'dist', 'nodes', 'fast-validate.cjs')

function zodAccepts(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  return Object.entries(value).every(([name, group]) => GROUP_NAME.test(name) && schemas().groupSchema.safeParse(group).success)
}

describe('compiled nodes validator', () => {
  let fast: (value: unknown) => boolean
  before(() => {
    expect(existsSync(compiledPath), 'run npm run build first').to.equal(true)
    fast = createRequire(import.meta.url)(compiledPath) as (value: unknown) => boolean
  })

  const bounds = (value: unknown): boolean =>
    Object.values(value as Record<string, {autoscale?: unknown}>).every((g) => {
      const a = g?.autoscale as {node_min?: number; node_max?: number} | undefined
      return typeof a !== 'object' || a === null || (a.node_min ?? 0) <= (a.node_max ?? 0)
    })

  it('agrees with zod on every malformed fixture that parses, and on the paper\'s file', () => {
    const dir = join(repoRoot, 'test', 'fixtures', 'malformed')
    const files = readdirSync(dir).filter((f) => /\.(json|ya?ml)$/.test(f))
    let compared = 0
    for (const file of [...files.map((f) => join(dir, f)), join(repoRoot, 'nodes.json')]) {
      const doc = parseSource(file, readFileSync(file, 'utf8'))
      if (doc.problems.length > 0) continue
      compared++
      expect(fast(doc.value) && bounds(doc.value), file).to.equal(zodAccepts(doc.value))
    }
    expect(compared).to.be.greaterThan(30)
  })

  it('agrees with zod on environments', () => {
    const envs: Array<[unknown, boolean]> = [
      [{staging: {default: true, region: 'us-west-2', security_groups: ['a'], autoscale: {node_max: 2}, groups: {web: {instance_type: 't3.small', tags: {a: 'b'}}}}}, true],
      [{staging: {cookbook_versions: {nginx: '~> 1.2'}, registry: {endpoints: ['http://10.0.0.1:2379'], project: 'p'}, release_bucket: 'my-bucket'}}, true],
      [{staging: {cookbook_versions: {nginx: 'latest'}}}, false],
      [{staging: {run_list: ['recipe[x]']}}, false],
      [{staging: {groups: {web: {default_attributes: {}}}}}, false],
      [{staging: {autoscale: {node_max: -1}}}, false],
      [{staging: {region: 'Mars'}}, false],
      [{'bad.name': {}}, false],
      [{staging: []}, false],
    ]
    for (const [environments, accepted] of envs) {
      const nodes = {__environments__: environments, web: {}}
      const zodOk = Object.entries(environments as Record<string, unknown>).every(([name, env]) => /^[A-Za-z0-9_-]{1,32}$/.test(name) && schemas().environmentSchema.safeParse(env).success)
      expect(zodOk, JSON.stringify(environments)).to.equal(accepted)
      expect(fast(nodes), JSON.stringify(environments)).to.equal(accepted)
    }
    const fixture = parseSource('e.json', readFileSync(join(repoRoot, 'test', 'fixtures', 'environments-nodes.json'), 'utf8'))
    expect(fast(fixture.value)).to.equal(true)
  })

  it('agrees with zod on service names, depends_on and service_cookbooks', () => {
    const groups: Array<[Record<string, unknown>, boolean]> = [
      [{services: {'api.v1': {port: 80, depends_on: ['db_2', 'cache-x']}}, depends_on: ['api.v1'], service_cookbooks: ['shop']}, true],
      [{services: {'a b': {}}}, false],
      [{services: {'a/b': {}}}, false],
      [{services: {api: {depends_on: ['a b']}}}, false],
      [{depends_on: ['']}, false],
      [{depends_on: 'api'}, false],
      [{depends_on: [3]}, false],
      [{service_cookbooks: ['shop::api']}, false],
      [{service_cookbooks: 'shop'}, false],
    ]
    for (const [group, accepted] of groups) {
      const nodes = {web: group}
      expect(fast(nodes), JSON.stringify(group)).to.equal(accepted)
      expect(zodAccepts(nodes), JSON.stringify(group)).to.equal(accepted)
    }
  })

  it('agrees with zod on random groups', () => {
    const scalar = fc.oneof(fc.constant(false), fc.constant(true), fc.integer({min: -3, max: 70_000}), fc.double({noNaN: true}), fc.constantFrom('us-east-1', 'm5.large', 'ami-0abc', 'recipe[a]', 'x', '', 'api.v1', 'a b'))
    const value = fc.oneof(scalar, fc.array(scalar, {maxLength: 3}), fc.dictionary(fc.constantFrom('timeout', 'node_min', 'node_max', 'port', 'x', 'a b', 'depends_on'), fc.oneof(scalar, fc.array(scalar, {maxLength: 2})), {maxKeys: 3}))
    const key = fc.constantFrom('region', 'instance_type', 'source_ami', 'autoscale', 'run_list', 'packer', 'services', 'tags', 'from_base', 'volume_size', 'description', 'type', 'unknown_key', 'depends_on', 'service_cookbooks')
    fc.assert(
      fc.property(fc.dictionary(key, value, {maxKeys: 4}), (group) => {
        const nodes = {web: group}
        expect(fast(nodes) && bounds(nodes)).to.equal(zodAccepts(nodes))
      }),
      {numRuns: 500},
    )
  })
})
