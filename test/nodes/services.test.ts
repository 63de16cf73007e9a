// Services and dependencies read from resolved groups (src/nodes/services.ts), and the checks
// across groups built on them (src/nodes/dependencies.ts).
import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {dependencyCycles} from '../../src/nodes/dependencies.js'
import {BASE, type Group, type NodesFile} from '../../src/nodes/model.js'
import {dependenciesOf, isServiceCookbook, serviceIndex, servicesOf} from '../../src/nodes/services.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'
import {repoRoot} from '../support/cli.js'

const machine = {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}

function load(value: Record<string, unknown>): NodesFile {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value, null, 2)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.path.join('.')}: ${d.message}`).join('\n'))
  return result.nodes
}

function problems(value: Record<string, unknown>): string[] {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value, null, 2)))
  if (result.ok) return []
  return result.diagnostics.map((d) => `${d.position?.line}:${d.position?.column} ${d.path.join('.')}: ${d.message}`)
}

function group(nodes: NodesFile, name: string): Group {
  const found = nodes.groups.get(name)
  if (!found) throw new Error(`no group ${name}`)
  return found
}

const shop = {
  [BASE]: {
    ...machine,
    service_cookbooks: ['shop'],
    depends_on: ['metrics'],
    run_list: ['recipe[base]'],
    services: {
      api: {port: 8080, health_check: '/health', depends_on: ['db', 'cache']},
      web: {port: 80, depends_on: ['api']},
    },
  },
  metrics: {run_list: ['recipe[ops-service::metrics]']},
  data: {
    service_cookbooks: ['data', 'shop'],
    depends_on: ['metrics'],
    run_list: ['recipe[data::db]', 'recipe[other::cache]', 'recipe[data::cache]'],
  },
  api: {
    depends_on: ['api'],
    run_list: ['recipe[shop]', 'recipe[shop::default]', 'recipe[shop::api@1.2.0]', 'recipe[shop::delete-old]', 'recipe[shop::api]', 'recipe[tools-service::search]'],
    post_run_list: ['recipe[shop::web]', 'recipe[shop-service::api]'],
  },
  frontend: {service_cookbooks: [], depends_on: ['api', 'api'], run_list: ['recipe[nginx]']},
}

describe('services in the nodes file', () => {
  const nodes = load(shop)

  describe('isServiceCookbook', () => {
    it('takes a cookbook named *-service, or one listed in service_cookbooks (inherited from __base__)', () => {
      const api = group(nodes, 'api')
      expect(isServiceCookbook(api, 'seatgeek-service')).to.equal(true)
      expect(isServiceCookbook(api, 'shop')).to.equal(true)
      expect(isServiceCookbook(api, 'data')).to.equal(false)
      expect(isServiceCookbook(group(nodes, 'data'), 'data')).to.equal(true)
      expect(isServiceCookbook(api, 'service')).to.equal(false)
      expect(isServiceCookbook(api, 'seatgeek')).to.equal(false)
    })

    it('service_cookbooks and depends_on are appended from __base__, each once', () => {
      expect(group(nodes, 'data').service_cookbooks).to.deep.equal(['shop', 'data'])
      expect(group(nodes, 'data').depends_on).to.deep.equal(['metrics'])
      expect(group(nodes, 'api').depends_on).to.deep.equal(['metrics', 'api'])
      expect(group(nodes, 'frontend').depends_on).to.deep.equal(['metrics', 'api'])
      expect(group(nodes, BASE).service_cookbooks).to.deep.equal(['shop'])
      expect(load({web: machine}).groups.get('web')).to.deep.include({service_cookbooks: [], depends_on: []})
    })
  })

  describe('servicesOf', () => {
    it('reads run_list then post_run_list in file order, each service once, without default or delete-* recipes', () => {
      expect(servicesOf(group(nodes, 'api'))).to.deep.equal([
        {name: 'api', cookbook: 'shop', recipe: 'recipe[shop::api]', port: 8080, health_check: '/health'},
        {name: 'search', cookbook: 'tools-service', recipe: 'recipe[tools-service::search]'},
        {name: 'web', cookbook: 'shop', recipe: 'recipe[shop::web]', port: 80},
      ])
    })

    it('leaves out recipes of cookbooks that are not service cookbooks', () => {
      expect(servicesOf(group(nodes, 'data')).map((s) => s.recipe)).to.deep.equal(['recipe[data::db]', 'recipe[data::cache]'])
      expect(servicesOf(group(nodes, 'frontend'))).to.deep.equal([])
      expect(servicesOf(group(nodes, BASE))).to.deep.equal([])
    })

    it('finds the paper\'s seatgeek-service recipes, and only those', () => {
      const paper = validateNodes(parseSource('nodes.json', readFileSync(join(repoRoot, 'nodes.json'), 'utf8')))
      if (!paper.ok) throw new Error('the paper\'s nodes file must validate')
      expect(servicesOf(group(paper.nodes, '12_04-bee')).map((s) => s.name)).to.deep.equal(['api-workers', 'cronq-workers', 'djjob'])
      expect(servicesOf(group(paper.nodes, '12_04-www'))).to.deep.equal([])
      expect([...serviceIndex(paper.nodes)]).to.deep.equal([
        ['api-workers', ['12_04-bee']],
        ['cronq-workers', ['12_04-bee']],
        ['djjob', ['12_04-bee']],
      ])
    })
  })

  describe('dependenciesOf', () => {
    it('is the group\'s depends_on plus that of every service it runs, sorted, each once', () => {
      // api runs api (→ db, cache), search (no metadata) and web (→ api); its own: metrics, api.
      expect(dependenciesOf(group(nodes, 'api'))).to.deep.equal(['api', 'cache', 'db', 'metrics'])
      expect(dependenciesOf(group(nodes, 'frontend'))).to.deep.equal(['api', 'metrics'])
      expect(dependenciesOf(group(nodes, 'metrics'))).to.deep.equal(['metrics'])
    })

    it('does not count the depends_on of a service the group does not run', () => {
      const plain = load({[BASE]: {...machine, services: {api: {depends_on: ['db']}}}, db: {run_list: ['recipe[x-service::db]']}})
      expect(dependenciesOf(group(plain, 'db'))).to.deep.equal([])
    })
  })

  describe('serviceIndex', () => {
    it('maps each service to the groups that run it, in file order, __base__ left out', () => {
      expect([...serviceIndex(nodes)]).to.deep.equal([
        ['api', ['api']],
        ['cache', ['data']],
        ['db', ['data']],
        ['metrics', ['metrics']],
        ['search', ['api']],
        ['web', ['api']],
      ])
      const inherited = load({[BASE]: {...machine, run_list: ['recipe[a-service::log]']}, one: {}, two: {}})
      expect([...serviceIndex(inherited)]).to.deep.equal([['log', ['one', 'two']]])
    })
  })

  describe('checks across groups', () => {
    it('rejects a dependency no group runs, at the list item, with a did-you-mean', () => {
      expect(problems({[BASE]: {...machine, depends_on: ['metrix']}, metrics: {run_list: ['recipe[ops-service::metrics]']}})).to.deep.equal([
        '7:7 __base__.depends_on.0: no group runs service "metrix"; did you mean "metrics"? (services run: metrics)',
      ])
      expect(problems({[BASE]: machine, web: {depends_on: ['api']}})).to.deep.equal([
        '9:7 web.depends_on.0: no group runs service "api"; no group runs any service (a service is recipe[C::S] where cookbook C is named *-service or listed in service_cookbooks)',
      ])
    })

    it('does not check the depends_on of a service no group runs', () => {
      expect(problems({[BASE]: {...machine, services: {unused: {depends_on: ['nothing']}}}, web: {}})).to.deep.equal([])
    })

    it('finds each cycle once, shortest, from its first name; a service depending on itself is not one', () => {
      expect(dependencyCycles(nodes)).to.deep.equal([])
      const cyclic = load({
        [BASE]: {...machine, services: {a: {depends_on: ['b']}, b: {depends_on: ['c', 'a']}, c: {depends_on: ['a']}, x: {depends_on: ['y', 'x']}, y: {depends_on: ['x']}}},
        one: {run_list: ['recipe[s-service::b]', 'recipe[s-service::a]']},
        two: {run_list: ['recipe[s-service::c]']},
        three: {run_list: ['recipe[s-service::y]', 'recipe[s-service::x]']},
      })
      expect(dependencyCycles(cyclic)).to.deep.equal([
        ['a', 'b', 'a'],
        ['x', 'y', 'x'],
      ])
      // A group's depends_on applies to every service it runs: two services of one group that it
      // makes depend on each other are a cycle too.
      const oneGroup = load({[BASE]: machine, both: {depends_on: ['b', 'a'], run_list: ['recipe[s-service::b]', 'recipe[s-service::a]']}})
      expect(dependencyCycles(oneGroup)).to.deep.equal([['a', 'b', 'a']])
    })
  })
})
