// Property-based tests of the paper's inheritance rules (src/nodes/inherit.ts), then of whole nodes
// files: a generated valid file validates, and every resolved group is what the rules say.
import {expect} from 'chai'
import fc from 'fast-check'
import {stringify as toYaml} from 'yaml'

import {buildRole} from '../../src/artifacts/role.js'
import {inherit, isDict, normaliseRunListItem, uniqueRunList, type Plain} from '../../src/nodes/inherit.js'
import {BASE} from '../../src/nodes/model.js'
import {RUN_LIST_ITEM} from '../../src/nodes/schema.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'

const RUNS = {numRuns: 300}

// ---------------------------------------------------------------------------------------------
// Generators. Keys come from a small alphabet so parent and child share keys often; the object
// prototype's own names (__proto__, constructor) are left out on purpose: see the report.

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'region', 'run_list', 'tags')
const scalar = fc.oneof(fc.string({maxLength: 6}), fc.integer({min: -5, max: 5}), fc.boolean(), fc.constant(null))
const leaf = fc.oneof(scalar, fc.array(scalar, {maxLength: 3}), fc.dictionary(key, scalar, {maxKeys: 3}))
/** A value of any kind, dicts nested up to two levels so "level 1 only" can be seen. */
const value = fc.oneof(
  {weight: 3, arbitrary: scalar},
  {weight: 2, arbitrary: fc.array(leaf, {maxLength: 4})},
  {weight: 2, arbitrary: fc.dictionary(key, leaf, {maxKeys: 4})},
)
const plain: fc.Arbitrary<Plain> = fc.dictionary(key, value, {maxKeys: 6})

type Kind = 'list' | 'dict' | 'scalar'
const kindOf = (v: unknown): Kind => (Array.isArray(v) ? 'list' : isDict(v) ? 'dict' : 'scalar')

/** Three dicts in which a key, wherever present, always holds the same kind of value. */
const sameKinds: fc.Arbitrary<[Plain, Plain, Plain]> = fc
  .dictionary(key, fc.constantFrom<Kind>('list', 'dict', 'scalar'), {minKeys: 1, maxKeys: 6})
  .chain((kinds) => {
    const one = (): fc.Arbitrary<Plain> => {
      const entries = Object.entries(kinds).map(([k, kind]) => {
        const v = kind === 'list' ? fc.array(leaf, {maxLength: 3}) : kind === 'dict' ? fc.dictionary(key, leaf, {maxKeys: 3}) : scalar
        return fc.option(v.map((x): [string, unknown] => [k, x]), {nil: undefined})
      })
      return fc.tuple(...entries).map((pairs) => Object.fromEntries(pairs.filter((p): p is [string, unknown] => p !== undefined)))
    }
    return fc.tuple(one(), one(), one())
  })

const cookbook = fc.constantFrom('base', 'nginx', 'app', 'seatgeek', 'sudo', 'my-cb', 'cb_2')
const recipe = fc.constantFrom('default', 'server', 'base-server', 'workers')
const runListItem = fc.oneof(
  cookbook.map((c) => `recipe[${c}]`),
  fc.tuple(cookbook, recipe).map(([c, r]) => `recipe[${c}::${r}]`),
  fc.tuple(cookbook, fc.constantFrom('1.0', '2.1.3')).map(([c, v]) => `recipe[${c}@${v}]`),
  fc.constantFrom('role[base]', 'role[web]', 'role[db-primary]'),
)
const runList = fc.array(runListItem, {maxLength: 8})

/** First occurrence of each item, in order: the reference the code is checked against. */
function firstOccurrences<T>(items: readonly T[]): T[] {
  const out: T[] = []
  for (const item of items) if (!out.includes(item)) out.push(item)
  return out
}

const clone = <T>(v: T): T => structuredClone(v)

// ---------------------------------------------------------------------------------------------

describe('inheritance rules (property-based)', () => {
  describe('inherit(parent, child)', () => {
    it('has exactly the keys of parent and child', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          expect(Object.keys(inherit(p, c)).sort()).to.deep.equal([...new Set([...Object.keys(p), ...Object.keys(c)])].sort())
        }),
        RUNS,
      )
    })

    it('keeps a key only the parent has, as it is', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          const merged = inherit(p, c)
          for (const k of Object.keys(p)) if (!(k in c)) expect(merged[k]).to.equal(p[k])
        }),
        RUNS,
      )
    })

    it('appends lists, parent first', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          const merged = inherit(p, c)
          for (const [k, v] of Object.entries(c)) {
            const inherited = p[k]
            if (Array.isArray(inherited) && Array.isArray(v)) expect(merged[k]).to.deep.equal([...inherited, ...v])
          }
        }),
        RUNS,
      )
    })

    it('merges dicts at level 1 only: a nested dict or list of the child replaces the parent\'s', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          const merged = inherit(p, c)
          for (const [k, v] of Object.entries(c)) {
            const inherited = p[k]
            if (!isDict(inherited) || !isDict(v)) continue
            const m = merged[k] as Plain
            expect(Object.keys(m).sort()).to.deep.equal([...new Set([...Object.keys(inherited), ...Object.keys(v)])].sort())
            // The child's nested values are taken whole (same object: nothing merged inside them).
            for (const [n, nv] of Object.entries(v)) expect(m[n]).to.equal(nv)
            for (const [n, nv] of Object.entries(inherited)) if (!(n in v)) expect(m[n]).to.equal(nv)
          }
        }),
        RUNS,
      )
    })

    it('otherwise the child overrides (scalars, and values of different kinds)', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          const merged = inherit(p, c)
          for (const [k, v] of Object.entries(c)) {
            const inherited = p[k]
            const both = (Array.isArray(inherited) && Array.isArray(v)) || (isDict(inherited) && isDict(v))
            if (!both) expect(merged[k]).to.equal(v)
          }
        }),
        RUNS,
      )
    })

    it('the cases the paper cares about: autoscale false → dict, dict → false, list → scalar', () => {
      expect(inherit({autoscale: false}, {autoscale: {timeout: 1, node_min: 0, node_max: 1}})).to.deep.equal({autoscale: {timeout: 1, node_min: 0, node_max: 1}})
      expect(inherit({autoscale: {timeout: 1, node_min: 0, node_max: 1}}, {autoscale: false})).to.deep.equal({autoscale: false})
      expect(inherit({packer: {vpc_id: 'v', tags: {a: '1'}}}, {packer: {tags: {b: '2'}}})).to.deep.equal({packer: {vpc_id: 'v', tags: {b: '2'}}})
      expect(inherit({x: ['a']}, {x: 'b'})).to.deep.equal({x: 'b'})
    })

    it('changes neither input', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          const [p0, c0] = [clone(p), clone(c)]
          const merged = inherit(p, c)
          expect(p).to.deep.equal(p0)
          expect(c).to.deep.equal(c0)
          // And the result shares no list or dict at level 1 that a later merge could append to.
          for (const [k, v] of Object.entries(merged)) {
            if ((Array.isArray(v) || isDict(v)) && k in p && k in c && kindOf(p[k]) === kindOf(c[k])) {
              expect(v).not.to.equal(p[k])
              expect(v).not.to.equal(c[k])
            }
          }
        }),
        RUNS,
      )
    })

    it('an empty parent or child is an identity', () => {
      fc.assert(
        fc.property(plain, (x) => {
          expect(inherit({}, x)).to.deep.equal(x)
          expect(inherit(x, {})).to.deep.equal(x)
        }),
        RUNS,
      )
    })

    it('is associative when a key holds the same kind of value everywhere', () => {
      fc.assert(
        fc.property(sameKinds, ([a, b, c]) => {
          expect(inherit(inherit(a, b), c)).to.deep.equal(inherit(a, inherit(b, c)))
        }),
        RUNS,
      )
    })

    it('is not associative across kinds (a list, then a scalar, then a list): the rules are applied pairwise', () => {
      const [a, b, c] = [{k: ['x']}, {k: 's'}, {k: ['y']}]
      expect(inherit(inherit(a, b), c)).to.deep.equal({k: ['y']})
      expect(inherit(a, inherit(b, c))).to.deep.equal({k: ['x', 'y']})
    })

    it('inheriting the same child twice only repeats list items (gone once the run list is de-duplicated)', () => {
      fc.assert(
        fc.property(plain, plain, (p, c) => {
          const once = inherit(p, c)
          const twice = inherit(once, c)
          for (const k of Object.keys(once)) {
            const v = once[k]
            const w = twice[k]
            if (Array.isArray(v) && Array.isArray(c[k])) expect(w).to.deep.equal([...v, ...(c[k] as unknown[])])
            else expect(w).to.deep.equal(v)
          }
        }),
        RUNS,
      )
      fc.assert(
        fc.property(runList, runList, (p, c) => {
          const once = inherit({run_list: p}, {run_list: c}).run_list as string[]
          const twice = inherit({run_list: once}, {run_list: c}).run_list as string[]
          expect(uniqueRunList(twice)).to.deep.equal(uniqueRunList(once))
        }),
        RUNS,
      )
    })
  })

  describe('run lists', () => {
    it('normalises recipe[x] to recipe[x::default] (keeping a version), and nothing else', () => {
      expect(normaliseRunListItem('recipe[sudo]')).to.equal('recipe[sudo::default]')
      expect(normaliseRunListItem('recipe[sudo@1.0]')).to.equal('recipe[sudo::default@1.0]')
      expect(normaliseRunListItem('recipe[sudo::default]')).to.equal('recipe[sudo::default]')
      expect(normaliseRunListItem('role[sudo]')).to.equal('role[sudo]')
      fc.assert(
        fc.property(runListItem, (item) => {
          const n = normaliseRunListItem(item)
          expect(normaliseRunListItem(n), 'idempotent').to.equal(n)
          expect(n, 'still a valid item').to.match(RUN_LIST_ITEM)
          if (item.startsWith('role[') || item.includes('::')) expect(n).to.equal(item)
          else expect(n).to.equal(item.replace(/^recipe\[([^\]@]+)/, 'recipe[$1::default'))
        }),
        RUNS,
      )
    })

    it('uniqueRunList keeps each (normalised) item once, at its first place', () => {
      fc.assert(
        fc.property(runList, (items) => {
          const unique = uniqueRunList(items)
          const normalised = items.map(normaliseRunListItem)
          expect(unique).to.deep.equal(firstOccurrences(normalised))
          expect(new Set(unique).size).to.equal(unique.length)
          expect(new Set(unique)).to.deep.equal(new Set(normalised))
          // Order: an item comes before another iff its first place in the input does.
          for (let i = 1; i < unique.length; i++) expect(normalised.indexOf(unique[i - 1] as string)).to.be.lessThan(normalised.indexOf(unique[i] as string))
        }),
        RUNS,
      )
    })

    it('recipe[x] and recipe[x::default] are the same item', () => {
      fc.assert(
        fc.property(cookbook, runList, runList, (c, before, after) => {
          const short = uniqueRunList([...before, `recipe[${c}]`, ...after, `recipe[${c}::default]`])
          const long = uniqueRunList([...before, `recipe[${c}::default]`, ...after, `recipe[${c}]`])
          expect(short).to.deep.equal(long)
          expect(short.filter((i) => i === `recipe[${c}::default]`)).to.have.length(1)
        }),
        RUNS,
      )
    })

    it('uniqueRunList is idempotent and de-duplicating twice changes nothing', () => {
      fc.assert(
        fc.property(runList, runList, (a, b) => {
          expect(uniqueRunList(uniqueRunList(a))).to.deep.equal(uniqueRunList(a))
          expect(uniqueRunList([...uniqueRunList(a), ...uniqueRunList(b)])).to.deep.equal(uniqueRunList([...a, ...b]))
          expect(uniqueRunList([...a, ...a])).to.deep.equal(uniqueRunList(a))
        }),
        RUNS,
      )
    })

    it('a parent\'s item keeps its place when the child lists it again', () => {
      fc.assert(
        fc.property(runList, runList, (p, c) => {
          const merged = uniqueRunList(inherit({run_list: p}, {run_list: c}).run_list as string[])
          expect(merged.slice(0, uniqueRunList(p).length)).to.deep.equal(uniqueRunList(p))
        }),
        RUNS,
      )
    })
  })

  describe('whole nodes files', () => {
    const groupName = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/).filter((n) => n !== BASE && n !== '__proto__')
    const attrs = fc.dictionary(fc.constantFrom('environment', 'key', 'nginx', 'app'), fc.oneof(fc.string({maxLength: 5}), fc.integer(), fc.dictionary(fc.constantFrom('port', 'user'), fc.oneof(fc.string({maxLength: 4}), fc.integer()), {maxKeys: 2})), {maxKeys: 3})
    const autoscale = fc
      .tuple(fc.integer({min: 1, max: 600}), fc.nat(5), fc.nat(5))
      .map(([timeout, a, b]) => ({timeout, node_min: Math.min(a, b), node_max: Math.max(a, b)}))
    const sg = fc.array(fc.constantFrom('external', 'internal', 'bee', 'www'), {maxLength: 3})
    // Text that reaches a Packer template may not hold "{{" (a Go template Packer would run): valid files have none.
    const text = (maxLength: number): fc.Arbitrary<string> => fc.string({maxLength}).filter((t) => !t.includes('{{'))
    const packer = fc.oneof(fc.constant(false as const), fc.dictionary(fc.constantFrom('vpc_id', 'subnet_id', 'communicator'), text(5), {maxKeys: 2}))
    const settings = fc.record(
      {
        description: text(20),
        instance_type: fc.constantFrom('m1.large', 'm3.xlarge', 't3.micro'),
        autoscale: fc.oneof(fc.constant(false as const), autoscale),
        security_groups: sg,
        default_attributes: attrs,
        override_attributes: attrs,
        tags: fc.dictionary(fc.constantFrom('team', 'cost'), text(5), {maxKeys: 2}),
        run_list: runList,
        post_run_list: runList,
        packer,
      },
      {requiredKeys: []},
    )
    const base = settings.map((s) => ({region: 'us-east-1', instance_type: 'm1.large', source_ami: 'ami-1ebb2077', ...s}))
    const nodesFile = fc.tuple(base, fc.uniqueArray(fc.tuple(groupName, settings), {minLength: 1, maxLength: 5, selector: ([n]) => n})).map(([b, groups]) => ({
      [BASE]: b,
      ...Object.fromEntries(groups),
    }))

    type Settings = Record<string, unknown> & {run_list?: string[]; post_run_list?: string[]; security_groups?: string[]}
    const texts = (file: Record<string, unknown>): Array<[string, string]> => [
      ['nodes.json', JSON.stringify(file, null, 2)],
      ['nodes.yaml', toYaml(file)],
    ]

    it('a generated valid file validates, in JSON and in YAML, to the same groups', () => {
      fc.assert(
        fc.property(nodesFile, (file) => {
          const [json, yaml] = texts(file).map(([name, text]) => validateNodes(parseSource(name, text)))
          if (!json?.ok) expect.fail(JSON.stringify(json?.diagnostics))
          if (!yaml?.ok) expect.fail(JSON.stringify(yaml?.diagnostics))
          expect([...yaml.nodes.groups.entries()]).to.deep.equal([...json.nodes.groups.entries()])
          expect([...json.nodes.groups.keys()]).to.deep.equal(Object.keys(file))
        }),
        {numRuns: 150},
      )
    })

    it('every resolved group follows the rules: lists appended and de-duplicated, dicts merged at level 1, scalars overridden', () => {
      fc.assert(
        fc.property(nodesFile, (file) => {
          const result = validateNodes(parseSource('nodes.json', JSON.stringify(file, null, 2)))
          if (!result.ok) expect.fail(JSON.stringify(result.diagnostics))
          const b = file[BASE] as Settings
          for (const [name, own] of Object.entries(file) as Array<[string, Settings]>) {
            if (name === BASE) continue
            const g = result.nodes.groups.get(name)
            if (!g) expect.fail(`group ${name} missing`)
            expect(g.run_list).to.deep.equal(firstOccurrences([...(b.run_list ?? []), ...(own.run_list ?? [])].map(normaliseRunListItem)))
            expect(g.post_run_list).to.deep.equal(firstOccurrences([...(b.post_run_list ?? []), ...(own.post_run_list ?? [])].map(normaliseRunListItem)))
            expect(buildRole(g).run_list).to.deep.equal(
              firstOccurrences([...(b.run_list ?? []), ...(own.run_list ?? []), ...(b.post_run_list ?? []), ...(own.post_run_list ?? [])].map(normaliseRunListItem)),
            )
            expect(g.security_groups).to.deep.equal(firstOccurrences([...(b.security_groups ?? []), ...(own.security_groups ?? [])]))
            for (const dict of ['default_attributes', 'override_attributes', 'tags'] as const) {
              expect(g[dict], dict).to.deep.equal({...((b[dict] as Plain | undefined) ?? {}), ...((own[dict] as Plain | undefined) ?? {})})
            }
            expect(g.instance_type).to.equal(own.instance_type ?? b.instance_type)
            expect(g.description).to.equal(own.description ?? b.description ?? '')
            expect(g.region).to.equal('us-east-1')
            expect(g.source_ami).to.equal('ami-1ebb2077')
            // autoscale and packer are false or a dict: a dict over a dict merges at level 1.
            for (const k of ['autoscale', 'packer'] as const) {
              const [pv, cv] = [b[k], own[k]]
              const expected = cv === undefined ? (pv ?? (k === 'packer' ? {} : false)) : isDict(pv) && isDict(cv) ? {...pv, ...cv} : cv
              expect(g[k], k).to.deep.equal(expected)
            }
          }
        }),
        {numRuns: 200},
      )
    })

    it('one bad run list item anywhere is reported alone, at its exact line and column', () => {
      const sentinel = 'recipe[not valid]'
      fc.assert(
        fc.property(nodesFile, fc.nat(), fc.nat(), fc.constantFrom('run_list', 'post_run_list'), (file, gi, ii, list) => {
          const names = Object.keys(file)
          const name = names[gi % names.length] as string
          const group = {...((file as Record<string, unknown>)[name] as Settings)}
          const items = [...(group[list] ?? [])]
          const index = ii % (items.length + 1)
          items.splice(index, 0, sentinel)
          group[list] = items
          const bad = {...file, [name]: group}
          for (const [fileName, text] of texts(bad)) {
            const result = validateNodes(parseSource(fileName, text))
            if (result.ok) expect.fail('a bad run list item passed')
            expect(result.diagnostics).to.have.length(1)
            const d = result.diagnostics[0]
            // The place, counted independently: where the sentinel's text starts.
            const offset = text.indexOf(fileName.endsWith('.json') ? JSON.stringify(sentinel) : sentinel)
            const before = text.slice(0, offset)
            const line = before.split('\n').length
            const column = offset - before.lastIndexOf('\n')
            expect(d?.path).to.deep.equal([name, list, index])
            expect(d?.position).to.deep.equal({line, column})
            expect(d?.message).to.contain('expected "recipe[cookbook]"')
          }
        }),
        {numRuns: 150},
      )
    })
  })
})
