// Environments in the nodes file (src/nodes/environments.ts, validate.ts): the merge order, list
// replacement, the keys no environment may set, selection, and the Chef environments generated
// from one file with two environments.
import {expect} from 'chai'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {buildChefEnvironment} from '../../src/artifacts/chef-environment.js'
import {planArtifacts} from '../../src/artifacts/generate.js'
import {renderRole} from '../../src/artifacts/role.js'
import {UserError} from '../../src/errors.js'
import {defaultEnvironment, ENVIRONMENTS, registryProject, selectEnvironment, stackName} from '../../src/nodes/environments.js'
import {loadNodes} from '../../src/nodes/load.js'
import {BASE, type Group, type NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'
import {listFiles, repoRoot, runMuster} from '../support/cli.js'

const FIXTURE = join(repoRoot, 'test', 'fixtures', 'environments-nodes.json')
const PAPER = join(repoRoot, 'test', 'fixtures', 'paper-nodes.json')
const fixtureText = readFileSync(FIXTURE, 'utf8')

function parse(text: string, file = 'nodes.json'): NodesFile {
  const result = validateNodes(parseSource(file, text))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.path.join('.')}: ${d.message}`).join('\n'))
  return result.nodes
}

function problems(value: unknown): string[] {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value, null, 2)))
  if (result.ok) return []
  return result.diagnostics.map((d) => `${d.position?.line}:${d.position?.column} ${d.path.join('.')}: ${d.message}`)
}

function group(nodes: NodesFile, name: string): Group {
  const found = nodes.groups.get(name)
  if (!found) throw new Error(`no group ${name}`)
  return found
}

const machine = {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}
const withEnvironments = (environments: Record<string, unknown>, groups: Record<string, unknown> = {web: {run_list: ['recipe[web]']}}): Record<string, unknown> => ({
  [ENVIRONMENTS]: environments,
  [BASE]: {...machine, security_groups: ['base']},
  ...groups,
})

describe('environments', () => {
  const all = parse(fixtureText)

  describe('one nodes file with two environments', () => {
    it('resolves each group in each environment by the documented merge order', () => {
      const staging = selectEnvironment(all, 'staging')
      const production = selectEnvironment(all, 'production')
      const bee = {staging: group(staging, '12_04-bee'), production: group(production, '12_04-bee')}
      // Step 3 (the environment's level) over step 2 (the group): staging moves every group.
      expect(bee.staging).to.include({region: 'us-west-2', instance_type: 't3.small', source_ami: 'ami-0a1b2c3d', environment: 'staging'})
      // Lists are replaced, never appended: staging's security group alone.
      expect(bee.staging.security_groups).to.deep.equal(['staging'])
      // Dicts merge at level 1: autoscale keeps the group's timeout.
      expect(bee.staging.autoscale).to.deep.equal({timeout: 120, node_min: 1, node_max: 1})
      expect(bee.staging.tags).to.deep.equal({env: 'staging'})
      // Step 4 (the environment's group) over step 3.
      expect(group(staging, '12_04-www').instance_type).to.equal('t3.medium')
      // Production changes only what it says.
      expect(bee.production).to.include({region: 'us-east-1', instance_type: 'm1.large', environment: 'production'})
      expect(bee.production.security_groups).to.deep.equal(['external', 'internal', 'bee'])
      expect(bee.production.subnets).to.deep.equal(['subnet-0aa', 'subnet-0bb'])
      expect(bee.production.autoscale).to.deep.equal({timeout: 120, node_min: 2, node_max: 6})
      // An environment's autoscale leaves a group without one alone.
      expect(group(staging, '12_04-www').autoscale).to.equal(false)
    })

    it('keeps the role identical in every environment, and the Chef environments differ exactly as declared', () => {
      for (const name of ['12_04-bee', '12_04-www']) {
        const roles = ['staging', 'production'].map((env) => renderRole(group(selectEnvironment(all, env), name)))
        expect(roles[0]).to.equal(roles[1])
        // And identical to the role of the paper's file, which has no environments.
        expect(roles[0]).to.equal(renderRole(group(parse(readFileSync(PAPER, 'utf8')), name)))
      }
      const staging = all.environments.get('staging')
      const production = all.environments.get('production')
      if (!staging || !production) throw new Error('environments missing')
      expect(buildChefEnvironment(staging)).to.deep.equal({
        name: 'staging',
        description: 'Where changes are shaken out before production',
        chef_type: 'environment',
        json_class: 'Chef::Environment',
        default_attributes: {environment: 'staging'},
        override_attributes: {},
        cookbook_versions: {seatgeek: '~> 2.1'},
      })
      expect(buildChefEnvironment(production)).to.deep.equal({
        name: 'production',
        description: 'What customers use',
        chef_type: 'environment',
        json_class: 'Chef::Environment',
        default_attributes: {environment: 'production'},
        override_attributes: {sudo: {users: ['ops']}},
        cookbook_versions: {seatgeek: '= 2.1.4'},
      })
    })

    it('plans environments/NAME.json for every environment with the roles, whichever environment is selected', () => {
      const texts = {provisionScript: '', agentUnit: '', convergeScript: '', project: 'muster'}
      for (const env of ['staging', 'production']) {
        const paths = planArtifacts(selectEnvironment(all, env), {kinds: {role: 'update'}, ...texts}).map((a) => a.path)
        expect(paths).to.have.members(['roles/12_04-bee.json', 'roles/12_04-www.json', 'environments/staging.json', 'environments/production.json'])
      }
      const paper = planArtifacts(parse(readFileSync(PAPER, 'utf8')), {kinds: {role: 'update'}, ...texts}).map((a) => a.path)
      expect(paper.filter((p) => p.startsWith('environments/'))).to.deep.equal([])
    })

    it('selects the default environment without --env, and names stacks GROUP.ENV', () => {
      expect(defaultEnvironment(all)?.name).to.equal('staging')
      const selected = selectEnvironment(all, undefined)
      expect(selected.environment).to.equal('staging')
      expect(stackName(group(selected, '12_04-bee'))).to.equal('12_04-bee.staging')
      // Without a default marked, the first listed.
      const unmarked = parse(JSON.stringify(withEnvironments({qa: {}, live: {}})))
      expect(selectEnvironment(unmarked, undefined).environment).to.equal('qa')
    })

    it('gives each environment a registry project of its own', () => {
      const staging = selectEnvironment(all, 'staging')
      expect(registryProject(staging, 'shop')).to.equal('shop.staging')
      expect(registryProject(selectEnvironment(all, 'production'), 'shop')).to.equal('shop.production')
      const named = parse(
        JSON.stringify({
          ...withEnvironments({staging: {}, production: {registry: {endpoints: ['http://10.0.9.1:2379'], project: 'live'}}}),
          [BASE]: {...machine, registry: {endpoints: ['http://10.0.0.5:2379'], project: 'shop'}},
        }),
      )
      expect(selectEnvironment(named, 'staging').registry).to.deep.equal({endpoints: ['http://10.0.0.5:2379'], project: 'shop.staging'})
      expect(selectEnvironment(named, 'production').registry).to.deep.equal({endpoints: ['http://10.0.9.1:2379'], project: 'live'})
      expect(registryProject(selectEnvironment(named, 'production'), 'ignored')).to.equal('live')
    })
  })

  describe('a file without environments', () => {
    it('means exactly what it meant before: no environment on the file or its groups, stacks named after groups', () => {
      const paper = parse(readFileSync(PAPER, 'utf8'))
      expect(paper.environments.size).to.equal(0)
      const selected = selectEnvironment(paper, undefined)
      expect(selected).to.equal(paper)
      expect(selected.environment).to.equal(undefined)
      for (const g of selected.groups.values()) {
        expect(g).not.to.have.property('environment')
        expect(stackName(g)).to.equal(g.name)
      }
      expect(registryProject(selected, 'shop')).to.equal('shop')
    })

    it('refuses --env, saying the file declares none', () => {
      const paper = parse(readFileSync(PAPER, 'utf8'))
      expect(() => selectEnvironment(paper, 'staging')).to.throw(UserError, /declares no environments/)
    })
  })

  describe('bad input', () => {
    it('refuses an unknown environment, listing the ones there are', () => {
      expect(() => selectEnvironment(all, 'prod')).to.throw(UserError, /no environment "prod".*/)
      try {
        selectEnvironment(all, 'prod')
      } catch (error) {
        expect((error as UserError).hint).to.contain('staging, production')
      }
    })

    it('refuses keys no environment may set, at their place, saying why', () => {
      const found = problems(
        withEnvironments({
          staging: {run_list: ['recipe[debug]'], services: {}, groups: {web: {default_attributes: {a: 1}, depends_on: ['db'], registry: {endpoints: ['http://10.0.0.1:2379']}}}},
        }),
      )
      expect(found.join('\n')).to.match(/^\d+:\d+ __environments__\.staging\.run_list: an environment may not set "run_list": it is part of the role, which is the same in every environment/m)
      expect(found.join('\n')).to.match(/__environments__\.staging\.services: .*same in every environment/)
      expect(found.join('\n')).to.match(/__environments__\.staging\.groups\.web\.default_attributes: .*Chef environment/)
      expect(found.join('\n')).to.match(/__environments__\.staging\.groups\.web\.depends_on: /)
      expect(found.join('\n')).to.match(/__environments__\.staging\.groups\.web\.registry: .*whole environment/)
      expect(found).to.have.length(5)
    })

    it('places the run_list refusal at its line and column', () => {
      const text = `{\n  "__environments__": {\n    "staging": {\n      "run_list": ["recipe[debug]"]\n    }\n  },\n  "__base__": {"region": "us-east-1", "instance_type": "m5.large", "source_ami": "ami-1ebb2077"},\n  "web": {}\n}\n`
      const result = validateNodes(parseSource('nodes.json', text))
      expect(result.ok).to.equal(false)
      if (result.ok) return
      expect(result.diagnostics.map((d) => [d.position?.line, d.position?.column, d.path.join('.')])).to.deep.equal([[4, 7, '__environments__.staging.run_list']])
    })

    it('refuses a group the file does not have, a bad name, a second default, bad values and shared registry projects', () => {
      const found = problems(
        withEnvironments({
          staging: {default: true, groups: {wbe: {instance_type: 't3.small'}, [BASE]: {region: 'eu-west-1'}}, registry: {endpoints: ['http://10.0.0.1:2379'], project: 'shop'}},
          production: {region: 'Mars'},
          'bad.name': {},
          _default: {},
        }),
      ).join('\n')
      expect(found).to.match(/__environments__\.staging\.groups\.wbe: no group "wbe" in this file; did you mean "web"\?/)
      expect(found).to.match(/__environments__\.staging\.groups\.__base__: set what this environment changes for every group at its own level/)
      expect(found).to.match(/__environments__\.production\.region: expected an AWS region/)
      expect(found).to.match(/__environments__\.bad\.name: environment names are 1–32 of letters, digits/)
      expect(found).to.match(/__environments__\._default: "_default" is Chef's own environment/)
      const twice = problems(withEnvironments({staging: {default: true}, production: {default: true}})).join('\n')
      expect(twice).to.match(/__environments__\.production\.default: only one environment may be the default, and "staging" already is/)
      const shared = problems(withEnvironments({a: {registry: {endpoints: ['http://10.0.0.1:2379'], project: 'shop'}}, b: {registry: {endpoints: ['http://10.0.0.1:2379'], project: 'shop'}}})).join('\n')
      expect(shared).to.match(/__environments__\.b\.registry\.project: environment "a" already uses registry project "shop"; environments must not share one/)
    })

    it('refuses an unknown key with a did-you-mean, and node_min above node_max once merged', () => {
      expect(problems(withEnvironments({staging: {instance_typ: 't3.small'}})).join('\n')).to.match(/__environments__\.staging\.instance_typ: unknown key "instance_typ"; did you mean "instance_type"\?/)
      const merged = problems(withEnvironments({staging: {autoscale: {node_min: 5}}}, {web: {autoscale: {timeout: 60, node_min: 1, node_max: 2}}})).join('\n')
      expect(merged).to.match(/__environments__\.staging\.autoscale: in environment "staging", group web would have autoscale\.node_min 5 above node_max 2/)
      const noFleet = problems(withEnvironments({staging: {groups: {web: {autoscale: {node_max: 3}}}}})).join('\n')
      expect(noFleet).to.match(/__environments__\.staging\.groups\.web\.autoscale: the group has no autoscale/)
      expect(problems(withEnvironments({}))).to.have.length(1)
      expect(problems({[ENVIRONMENTS]: ['staging'], web: machine}).join('\n')).to.match(/__environments__: expected a dict of environment names/)
    })

    it('checks an environment\'s packer options and endpoints as a group\'s', () => {
      const found = problems(withEnvironments({staging: {packer: {ami_name: 'x', vpc_id: 'vpc-1'}}})).join('\n')
      expect(found).to.match(/__environments__\.staging\.packer\.ami_name: packer option "ami_name" is set by muster/)
      expect(found).not.to.match(/vpc_id/)
      expect(problems(withEnvironments({staging: {registry: {endpoints: ['http://10.0.0.1:2379/v3']}}})).join('\n')).to.match(/__environments__\.staging\.registry\.endpoints\.0: /)
      expect(problems(withEnvironments({staging: {tags: {team: '{{ env "HOME" }}'}}})).join('\n')).to.match(/__environments__\.staging\.tags\.team: contains "\{\{"/)
    })
  })

  describe('on the command line', () => {
    let dir: string
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'muster-env-'))
      writeFileSync(join(dir, 'nodes.json'), fixtureText)
    })
    afterEach(() => rmSync(dir, {recursive: true, force: true}))

    it('takes --env and MUSTER_ENV, and the default without either', () => {
      const show = (args: string[], env: Record<string, string> = {}): Record<string, unknown> => {
        const result = runMuster(['show', '12_04-bee', '--json', ...args], {cwd: dir, env})
        expect(result.code, result.stderr).to.equal(0)
        return JSON.parse(result.stdout) as Record<string, unknown>
      }
      expect(show([])).to.include({region: 'us-west-2', environment: 'staging'})
      expect(show(['--env', 'production'])).to.include({region: 'us-east-1', environment: 'production'})
      expect(show([], {MUSTER_ENV: 'production'})).to.include({region: 'us-east-1', environment: 'production'})
      // The flag wins over the variable.
      expect(show(['--env', 'staging'], {MUSTER_ENV: 'production'})).to.include({environment: 'staging'})
    })

    it('refuses --env \'\' (as --nodes \'\'), on every kind of verb, instead of working on the default environment; an empty MUSTER_ENV means unset', () => {
      for (const args of [['show', '12_04-bee'], ['generate'], ['packer:run', '12_04-bee', '--preview'], ['node:ls', '--etcd', 'http://127.0.0.1:1']]) {
        const result = runMuster([...args, '--env', ''], {cwd: dir})
        expect(result.code, `${args.join(' ')}: ${result.stdout}`).to.equal(1)
        expect(result.stderr).to.contain('--env was given an empty name')
      }
      expect(listFiles(dir)).to.deep.equal(['nodes.json'])
      // Without a nodes file (a registry verb) and on a file without environments, the same refusal.
      const bare = mkdtempSync(join(tmpdir(), 'muster-env-'))
      try {
        expect(runMuster(['node:ls', '--env', '', '--etcd', 'http://127.0.0.1:1'], {cwd: bare}).stderr).to.contain('--env was given an empty name')
        writeFileSync(join(bare, 'nodes.json'), readFileSync(PAPER, 'utf8'))
        expect(runMuster(['ls', '--env', ''], {cwd: bare}).stderr).to.contain('--env was given an empty name')
        expect(runMuster(['ls'], {cwd: bare, env: {MUSTER_ENV: ''}}).code).to.equal(0)
      } finally {
        rmSync(bare, {recursive: true, force: true})
      }
      const unset = runMuster(['show', '12_04-bee', '--json'], {cwd: dir, env: {MUSTER_ENV: ''}})
      expect(unset.code, unset.stderr).to.equal(0)
      expect(JSON.parse(unset.stdout)).to.include({environment: 'staging'})
    })

    it('packer:promote __base__ is refused with a next step that promotes something, writing nothing', () => {
      const result = runMuster(['packer:promote', '__base__', '--from', 'staging', '--to', 'production', '--yes'], {cwd: dir})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain('__base__ is not a node group, so there is no fleet to promote its image to; nothing was changed')
      expect(result.stderr).to.contain('muster packer:promote GROUP --from staging --to production')
      expect(result.stderr).not.to.contain('leave GROUP out')
      expect(listFiles(dir)).to.deep.equal(['nodes.json'])
    })

    it('refuses an unknown environment with exit 1 and writes nothing', () => {
      const result = runMuster(['generate', '--env', 'prod'], {cwd: dir})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain('no environment "prod" in nodes.json')
      expect(result.stderr).to.contain('staging, production')
      expect(readFileSync(join(dir, 'nodes.json'), 'utf8')).to.equal(fixtureText)
      expect(() => readFileSync(join(dir, 'environments', 'staging.json'))).to.throw()
    })

    it('generates both Chef environments and the same roles whichever environment is selected', () => {
      expect(runMuster(['generate', '--env', 'production'], {cwd: dir}).code).to.equal(0)
      const first = ['roles/12_04-bee.json', 'environments/staging.json', 'environments/production.json'].map((p) => readFileSync(join(dir, p), 'utf8'))
      const check = runMuster(['generate', '--check', '--env', 'staging'], {cwd: dir})
      // The packer templates differ between environments (region, instance type); roles and Chef environments do not.
      expect(check.code).to.equal(1)
      expect(check.stdout + check.stderr).to.match(/packer\//)
      expect(check.stdout + check.stderr).not.to.match(/(stale|missing) +(roles|environments)\//)
      expect(JSON.parse(first[1] as string)).to.include({name: 'staging', chef_type: 'environment'})
    })

    it('validate reports a bad environment at file:line:column and exits 1', () => {
      writeFileSync(join(dir, 'nodes.json'), fixtureText.replace('"region": "us-west-2"', '"region": "us-west-2", "run_list": ["recipe[x]"]'))
      const result = runMuster(['validate'], {cwd: dir})
      expect(result.code).to.equal(1)
      const line = fixtureText.split('\n').findIndex((l) => l.includes('"region": "us-west-2"')) + 1
      expect(result.stderr).to.match(new RegExp(`nodes\\.json:${line}:\\d+: __environments__\\.staging\\.run_list: an environment may not set "run_list"`))
    })
  })

  it('loads through loadNodes with an environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muster-env-'))
    try {
      writeFileSync(join(dir, 'nodes.json'), fixtureText)
      const nodes = loadNodes({cwd: dir, environment: 'production'})
      expect(nodes.environment).to.equal('production')
      expect(group(nodes, '12_04-bee').region).to.equal('us-east-1')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
