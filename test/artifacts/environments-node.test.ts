// Environments on the nodes (issue 13), unit level: the registry project rule and the registry a
// CLI verb resolves (src/actions/registry-target.ts), the agent's settings and the user data of a
// node in an environment (its Chef environment file and solo.rb), the user data of a file without
// environments byte for byte as before, and a release whose bytes are the same whatever --env it
// was built with.
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {Deploy} from '../../src/actions/deploy.js'
import {optionalRegistryTarget, registryTarget} from '../../src/actions/registry-target.js'
import {CommandProvisioner, DEFAULT_PROVISION} from '../../src/agent/provisioner.js'
import {readConfigFile, resolveSettings} from '../../src/agent/settings.js'
import {renderChefEnvironment} from '../../src/artifacts/chef-environment.js'
import {fleetSettings, NODE_PROVISION} from '../../src/artifacts/node-agent.js'
import {renderUserData, USER_DATA_TEMPLATE} from '../../src/artifacts/userdata.js'
import {UserError} from '../../src/errors.js'
import {formatDetached} from '../../src/ui/deploy.js'
import {registryProject, releaseProject} from '../../src/nodes/environments.js'
import {loadNodes} from '../../src/nodes/load.js'
import type {Group, NodesFile} from '../../src/nodes/model.js'
import {buildRelease, releaseEnvironments} from '../../src/release/build.js'
import {parseReleaseManifest, ReleaseRefused} from '../../src/release/fetch.js'
import {makeTempDir, removeDir} from '../support/process.js'

const template = readFileSync(USER_DATA_TEMPLATE, 'utf8')
const FIXTURE = 'test/fixtures/environments-nodes.json'
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, Record<string, unknown>>
const load = (environment?: string, path = FIXTURE): NodesFile => loadNodes({cwd: '.', path, env: {}, environment})

/** A project dir holding `nodes` as nodes.json and a Pulumi.yaml named `name`. */
function projectDir(nodes: unknown, name = 'shop'): string {
  const dir = makeTempDir('env-registry')
  writeFileSync(join(dir, 'nodes.json'), typeof nodes === 'string' ? nodes : JSON.stringify(nodes))
  writeFileSync(join(dir, 'Pulumi.yaml'), `name: ${name}\nruntime: nodejs\n`)
  return dir
}

describe('environments on the nodes: the registry project', () => {
  it('is PROJECT.ENV, or the environment\'s own project, and the plain project without environments', () => {
    expect(registryProject({}, 'shop')).to.equal('shop')
    expect(registryProject({registry: {endpoints: ['http://e:2379'], project: 'fleet'}}, 'shop')).to.equal('fleet')
    expect(registryProject({environment: 'staging'}, 'shop')).to.equal('shop.staging')
    expect(registryProject({environment: 'production', registry: {endpoints: ['http://e:2379'], project: 'prod-registry'}}, 'shop')).to.equal('prod-registry')
    // Releases are the fleet's: the same project in every environment.
    expect(releaseProject({environment: 'staging'}, 'shop')).to.equal('shop')
    expect(releaseProject({environment: 'production', fleetProject: 'fleet', registry: {endpoints: ['http://e:2379'], project: 'fleet.production'}}, 'shop')).to.equal('fleet')
    expect(releaseProject({registry: {endpoints: ['http://e:2379'], project: 'fleet'}}, 'shop')).to.equal('fleet')
  })

  it('gives each environment of one nodes file its own project when a verb resolves the registry (--env, else the default)', async () => {
    const dir = projectDir(fixture)
    try {
      const flags = {etcd: 'http://127.0.0.1:2379'}
      const staging = await registryTarget(flags, {}, dir)
      expect(staging).to.include({project: 'shop.staging', environment: 'staging', releaseProject: 'shop'})
      expect(await registryTarget({...flags, env: 'production'}, {}, dir)).to.include({project: 'shop.production', environment: 'production', releaseProject: 'shop'})
      // --project names the fleet's project; the environment's is PROJECT.ENV.
      expect(await registryTarget({...flags, env: 'production', project: 'other'}, {}, dir)).to.include({project: 'other.production', releaseProject: 'other'})
    } finally {
      removeDir(dir)
    }
  })

  it('takes the environment\'s registry from the nodes file: its endpoints when none are given, its named project', async () => {
    const withRegistry = {
      ...fixture,
      __base__: {...fixture.__base__, registry: {endpoints: ['http://10.0.0.5:2379'], project: 'fleet'}},
      __environments__: {
        ...(fixture.__environments__ as Record<string, unknown>),
        production: {...((fixture.__environments__ as Record<string, Record<string, unknown>>).production), registry: {endpoints: ['http://10.9.0.5:2379'], project: 'prod-registry'}},
      },
    }
    const dir = projectDir(withRegistry)
    try {
      expect(await registryTarget({}, {}, dir)).to.deep.include({endpoints: ['http://10.0.0.5:2379'], project: 'fleet.staging', releaseProject: 'fleet'})
      expect(await registryTarget({env: 'production'}, {}, dir)).to.deep.include({endpoints: ['http://10.9.0.5:2379'], project: 'prod-registry', releaseProject: 'fleet'})
      // Given endpoints win over the file's.
      expect(await registryTarget({env: 'production', etcd: 'http://127.0.0.1:2379'}, {}, dir)).to.deep.include({endpoints: ['http://127.0.0.1:2379'], project: 'prod-registry'})
    } finally {
      removeDir(dir)
    }
  })

  it('behaves as before without environments or without a nodes file; --env there is a clear error', async () => {
    // The paper's file as it is (it is not strict JSON: muster reads it anyway).
    const paper = readFileSync('test/fixtures/paper-nodes.json', 'utf8')
    const dir = projectDir(paper)
    const empty = makeTempDir('env-registry-none')
    try {
      const target = await registryTarget({etcd: 'http://127.0.0.1:2379'}, {}, dir)
      expect(target.project).to.equal('shop')
      expect(target).not.to.have.property('environment')
      expect(target).not.to.have.property('releaseProject')
      expect(await optionalRegistryTarget({}, {}, dir)).to.equal(undefined)
      expect((await registryTarget({etcd: 'http://127.0.0.1:2379', project: 'p'}, {}, empty)).project).to.equal('p')
      let error: unknown
      try {
        await registryTarget({etcd: 'http://127.0.0.1:2379', env: 'staging'}, {}, dir)
      } catch (e) {
        error = e
      }
      expect(error).to.be.instanceOf(UserError)
      expect((error as Error).message).to.match(/declares no environments, so there is no environment "staging"/)
      error = undefined
      try {
        await registryTarget({etcd: 'http://127.0.0.1:2379', env: 'staging', project: 'p'}, {}, empty)
      } catch (e) {
        error = e
      }
      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).message).to.match(/--env staging: there is no nodes file in .* to read its environments from/)
      expect((error as UserError).hint).to.match(/--nodes PATH/)
      error = undefined
      const withEnvironments = projectDir(fixture)
      try {
        await registryTarget({etcd: 'http://127.0.0.1:2379', env: 'qa'}, {}, withEnvironments)
      } catch (e) {
        error = e
      } finally {
        removeDir(withEnvironments)
      }
      expect((error as UserError).message).to.match(/no environment "qa"/)
      expect((error as UserError).hint).to.match(/staging, production/)
    } finally {
      removeDir(dir)
      removeDir(empty)
    }
  })
})

describe('environments on the nodes: the user data and the agent\'s settings', () => {
  const registry = {endpoints: ['http://10.0.0.5:2379']}

  it('renders the user data of a file without environments byte for byte as before environments', () => {
    const paper = loadNodes({cwd: 'test/fixtures', path: 'paper-nodes.json', env: {}})
    const nodes = {...paper, registry: {endpoints: ['http://10.0.0.5:2379'], project: 'shop'}, releaseBucket: 'my-releases'}
    expect(renderUserData(template, nodes.groups.get('12_04-bee') as Group, {fleet: fleetSettings(nodes, 'paper')})).to.equal(readFileSync('test/fixtures/golden/user-data-12_04-bee.paper.sh', 'utf8'))
    expect(renderUserData(template, paper.groups.get('12_04-www') as Group, {})).to.equal(readFileSync('test/fixtures/golden/user-data-12_04-www.paper.sh', 'utf8'))
  })

  for (const environment of ['staging', 'production']) {
    it(`writes environments/${environment}.json, solo.rb converging in it, and agent.json naming it (${environment})`, () => {
      const nodes = {...load(environment), registry}
      const group = nodes.groups.get('12_04-bee') as Group
      const text = renderUserData(template, group, {fleet: fleetSettings(nodes, 'shop')})
      const dir = makeTempDir('env-userdata')
      try {
        const bin = join(dir, 'bin')
        mkdirSync(bin)
        // A stand-in chef-solo that copies the solo.rb it was given, as chef reads it.
        writeFileSync(join(bin, 'chef-solo'), `#!/bin/sh\ncp "$2" "${dir}/solo-seen.rb"\n`)
        chmodSync(join(bin, 'chef-solo'), 0o755)
        const script = text.replace('MUSTER_DIR=/etc/muster', `MUSTER_DIR=${dir}/etc`)
        const run = spawnSync('sh', ['-c', script], {encoding: 'utf8', env: {PATH: `${bin}:/usr/bin:/bin`}})
        expect(run.status, run.stderr).to.equal(0)
        const environmentObject = nodes.environments.get(environment)
        if (!environmentObject) throw new Error(`no ${environment}`)
        expect(readFileSync(join(dir, 'etc', 'environments', `${environment}.json`), 'utf8')).to.equal(renderChefEnvironment(environmentObject))
        expect(readFileSync(join(dir, 'solo-seen.rb'), 'utf8')).to.equal(
          'cookbook_path ["/etc/muster/cookbooks", "/var/chef/cookbooks"]\nrole_path "/etc/muster/roles"\n' +
            `environment_path(File.file?("/var/lib/muster/current/environments/${environment}.json") ? "/var/lib/muster/current/environments" : "/etc/muster/environments")\n` +
            `environment "${environment}"\n`,
        )
        expect(JSON.parse(readFileSync(join(dir, 'etc', 'agent.json'), 'utf8'))).to.deep.equal({
          group: '12_04-bee',
          etcd: 'http://10.0.0.5:2379',
          project: `shop.${environment}`,
          environment,
          releaseProject: 'shop',
          nodes: '/etc/muster/nodes.json',
          dna: '/etc/muster/dna.json',
          provision: NODE_PROVISION,
        })
        // The node's own nodes file: its group as resolved in the environment, and no environments.
        const onNode = loadNodes({cwd: dir, path: join(dir, 'etc', 'nodes.json'), env: {}})
        expect(onNode.environments.size).to.equal(0)
        const {environment: _resolvedIn, ...resolved} = group
        expect(onNode.groups.get('12_04-bee')).to.deep.equal(resolved)
        expect(onNode.registry).to.deep.equal({endpoints: registry.endpoints})
      } finally {
        rmSync(dir, {recursive: true, force: true})
      }
    })
  }

  it('gives agent.json the environment\'s own registry: its endpoints and the project it names', () => {
    const dir = projectDir({
      ...fixture,
      __base__: {...fixture.__base__, registry: {endpoints: ['http://10.0.0.5:2379']}},
      __environments__: {
        ...(fixture.__environments__ as Record<string, unknown>),
        production: {...((fixture.__environments__ as Record<string, Record<string, unknown>>).production), registry: {endpoints: ['http://10.9.0.5:2379', 'http://10.9.0.6:2379'], project: 'prod-registry'}},
      },
    })
    try {
      const agentJson = (environment: string): Record<string, string> => {
        const nodes = loadNodes({cwd: dir, env: {}, environment})
        const text = renderUserData(template, nodes.groups.get('12_04-www') as Group, {fleet: fleetSettings(nodes, 'shop')})
        return JSON.parse(/MUSTER_AGENT_JSON'\n([^]*?)\nMUSTER_AGENT_JSON/.exec(text)?.[1] ?? '{}') as Record<string, string>
      }
      expect(agentJson('production')).to.include({etcd: 'http://10.9.0.5:2379,http://10.9.0.6:2379', project: 'prod-registry', environment: 'production', releaseProject: 'shop'})
      expect(agentJson('staging')).to.include({etcd: 'http://10.0.0.5:2379', project: 'shop.staging', environment: 'staging', releaseProject: 'shop'})
    } finally {
      removeDir(dir)
    }
  })

  it('refuses a user data template without {{chef_environment}} for a node in an environment, saying where it goes', () => {
    const nodes = {...load('production'), registry}
    const old = template.replace('{{chef_environment}}\n', '')
    expect(() => renderUserData(old, nodes.groups.get('12_04-bee') as Group, {fleet: fleetSettings(nodes, 'shop')})).to.throw(UserError, /templates\/user-data.sh has no \{\{chef_environment\}\}, and group 12_04-bee is in environment production/)
    // Without environments the old template still renders (the placeholder is not needed there).
    const paper = loadNodes({cwd: 'test/fixtures', path: 'paper-nodes.json', env: {}})
    expect(renderUserData(old, paper.groups.get('12_04-bee') as Group, {})).to.equal(renderUserData(template, paper.groups.get('12_04-bee') as Group, {}))
  })
})

describe('environments on the nodes: releases', () => {
  const now = new Date('2026-11-26T01:00:00Z')

  it('gives a group\'s release the same bytes and digest whatever --env it is built with, carrying every environment', () => {
    const staging = load('staging')
    const production = load('production')
    const cookbooks = {url: 's3://b/muster/shop/cookbooks/x.tgz', sha256: 'a'.repeat(64), bytes: 10}
    const project = releaseProject(staging, 'shop')
    expect(project).to.equal(releaseProject(production, 'shop'))
    const a = buildRelease(project, staging.groups.get('12_04-bee') as Group, cookbooks, now, undefined, releaseEnvironments(staging))
    const b = buildRelease(project, production.groups.get('12_04-bee') as Group, cookbooks, now, undefined, releaseEnvironments(production))
    expect(a.digest).to.equal(b.digest)
    expect(a.bytes.equals(b.bytes)).to.equal(true)
    expect(Object.keys(a.manifest.environments ?? {})).to.deep.equal(['staging', 'production'])
    expect(a.manifest.environments?.production).to.deep.include({name: 'production', chef_type: 'environment', override_attributes: {sudo: {users: ['ops']}}})
    // A different environment's attributes make a different release.
    const changed = {...staging, environments: new Map([...staging.environments].map(([k, e]) => [k, k === 'production' ? {...e, chef: {...e.chef, default_attributes: {environment: 'prod'}}} : e]))}
    expect(buildRelease(project, staging.groups.get('12_04-bee') as Group, cookbooks, now, undefined, releaseEnvironments(changed)).digest).not.to.equal(a.digest)
  })

  it('has no environments in the release of a file without them (its bytes as before)', () => {
    const paper = loadNodes({cwd: 'test/fixtures', path: 'paper-nodes.json', env: {}})
    expect(releaseEnvironments(paper)).to.equal(undefined)
    const built = buildRelease('shop', paper.groups.get('12_04-bee') as Group, null, now, undefined, releaseEnvironments(paper))
    expect(built.bytes.toString('utf8')).not.to.contain('environments')
  })

  it('refuses a manifest whose environments could name a file outside environments/, or are not Chef environments', () => {
    const staging = load('staging')
    const built = buildRelease('shop', staging.groups.get('12_04-bee') as Group, null, now, undefined, releaseEnvironments(staging))
    const expectRelease = {project: 'shop', group: '12_04-bee'}
    expect(parseReleaseManifest(built.bytes.toString('utf8'), expectRelease).environments?.staging).to.deep.include({name: 'staging'})
    const hostile = (environments: unknown): string => JSON.stringify({...JSON.parse(built.bytes.toString('utf8')), environments})
    expect(() => parseReleaseManifest(hostile({'../../etc/passwd': {name: '../../etc/passwd'}}), expectRelease)).to.throw(ReleaseRefused, /environments has an entry/)
    expect(() => parseReleaseManifest(hostile({staging: {name: 'production'}}), expectRelease)).to.throw(ReleaseRefused, /environments has an entry "staging"/)
    expect(() => parseReleaseManifest(hostile(['staging']), expectRelease)).to.throw(ReleaseRefused, /environments is not an object/)
  })
})


describe('environments on the nodes: the agent\'s default provision command', () => {
  /** Runs DEFAULT_PROVISION with a chef-solo on PATH that prints its arguments, one a line. */
  async function chefArguments(environment: string | undefined, releaseDir: string | undefined): Promise<string[]> {
    const dir = makeTempDir('env-provision')
    try {
      const bin = join(dir, 'bin')
      mkdirSync(bin)
      writeFileSync(join(bin, 'chef-solo'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >"${dir}/args"\n`)
      chmodSync(join(bin, 'chef-solo'), 0o755)
      writeFileSync(join(dir, 'attributes.json'), '{}')
      const provisioner = new CommandProvisioner({command: DEFAULT_PROVISION, stateDir: dir, node: 'n1', group: 'web', environment, env: {PATH: `${bin}:/usr/bin:/bin`}})
      const result = await provisioner.run({reason: 'deploy', attributesFile: join(dir, 'attributes.json'), revision: 1, ...(releaseDir === undefined ? {} : {releaseDir})})
      expect(result.ok, result.tail).to.equal(true)
      return readFileSync(join(dir, 'args'), 'utf8').trimEnd().split('\n')
    } finally {
      removeDir(dir)
    }
  }

  it('gives chef-solo --environment, and the release\'s environments/ when it holds the environment', async () => {
    const release = makeTempDir('env-release')
    try {
      mkdirSync(join(release, 'environments'))
      writeFileSync(join(release, 'environments', 'staging.json'), '{"name": "staging"}\n')
      const withRelease = await chefArguments('staging', release)
      expect(withRelease.slice(-4)).to.deep.equal(['--environment', 'staging', '--config-option', `environment_path=${release}/environments`])
      expect(withRelease).to.include(`cookbook_path=${release}/cookbooks`)
      // A release without this environment's file (built before it existed): solo.rb's environment_path stays.
      expect((await chefArguments('production', release)).slice(-2)).to.deep.equal(['--environment', 'production'])
      expect((await chefArguments('staging', undefined)).slice(-2)).to.deep.equal(['--environment', 'staging'])
      // Without environments, the command is what it was.
      const plain = await chefArguments(undefined, undefined)
      expect(plain.slice(0, 3)).to.deep.equal(['--config', '/etc/muster/solo.rb', '--json-attributes'])
      expect(plain.slice(4)).to.deep.equal(['--no-color'])
    } finally {
      removeDir(release)
    }
  })
})

describe('environments on the nodes: following a deploy again', () => {
  it('names --env (and --nodes) in the command printed on Ctrl-C, so it follows the same environment\'s deploy', () => {
    expect(formatDetached('20261126T010000Z-abcdef', {etcd: 'http://10.0.0.5:2379', env: 'production', nodes: 'fleet/nodes.json'})).to.equal(
      'detached; follow again with: muster deploy:status 20261126T010000Z-abcdef --follow --etcd http://10.0.0.5:2379 --nodes fleet/nodes.json --env production\n',
    )
  })
})

describe('environments on the nodes: the agent\'s settings', () => {
  it('takes environment and releaseProject from agent.json (as the user data writes it), and refuses names that are not', () => {
    const dir = makeTempDir('env-settings')
    try {
      const file = join(dir, 'agent.json')
      writeFileSync(file, JSON.stringify({group: 'web', etcd: 'http://10.0.0.5:2379', project: 'shop.staging', environment: 'staging', releaseProject: 'shop'}))
      const settings = resolveSettings({}, readConfigFile(file), {})
      expect(settings).to.include({project: 'shop.staging', environment: 'staging', releaseProject: 'shop'})
      expect(resolveSettings({group: 'web', etcd: 'http://e:2379'}, {}, {})).to.include({environment: undefined, releaseProject: undefined})
      for (const [key, value, where] of [['environment', 'stag ing', '"environment" in --config'], ['releaseProject', '../shop', '"releaseProject" in --config']] as const) {
        writeFileSync(file, JSON.stringify({group: 'web', etcd: 'http://10.0.0.5:2379', [key]: value}))
        let error: unknown
        try {
          resolveSettings({}, readConfigFile(file), {})
        } catch (e) {
          error = e
        }
        expect(error).to.be.instanceOf(UserError)
        expect((error as UserError).message).to.equal(`${where}: ${JSON.stringify(value)} is not a usable name`)
        expect((error as UserError).hint).to.match(/The agent started nothing/)
      }
      let flagError: unknown
      try {
        resolveSettings({group: 'web', etcd: 'http://e:2379', environment: '$(reboot)'}, {}, {})
      } catch (e) {
        flagError = e
      }
      expect((flagError as UserError).message).to.match(/^--environment: "\$\(reboot\)" is not a usable name/)
    } finally {
      removeDir(dir)
    }
  })
})

describe('environments on the nodes: instance:deploy refuses before it reads or writes anything', () => {
  const refusal = async (options: Partial<ConstructorParameters<typeof Deploy>[0]>, registry: ConstructorParameters<typeof Deploy>[0]['registry']): Promise<UserError> => {
    let opened = 0
    const deploy = new Deploy({cwd: '.', nodesPath: FIXTURE, environment: 'production', n: 1, maxErrors: 0, bucket: 'my-releases', registry, ...options}, {progress: () => undefined}, {
      openStore: () => {
        opened++
        throw new Error('the registry must not be opened')
      },
      openBucket: () => {
        opened++
        throw new Error('the bucket must not be opened')
      },
      now: () => new Date(),
    })
    try {
      await deploy.plan()
    } catch (error) {
      expect(opened).to.equal(0)
      expect(error).to.be.instanceOf(UserError)
      return error as UserError
    }
    throw new Error('plan() did not refuse')
  }
  const registry = {endpoints: ['http://127.0.0.1:2379'], project: 'shop.production', security: {}, environment: 'production', releaseProject: 'shop'}

  it('--release without GROUP, or with something that is not a digest', async () => {
    expect((await refusal({release: 'a'.repeat(64)}, registry)).message).to.equal('--release rolls out one group\'s release, and no GROUP was given')
    const bad = await refusal({release: 'A'.repeat(64), group: '12_04-bee'}, registry)
    expect(bad.message).to.match(/^--release "A{64}": expected a release digest/)
    expect(bad.hint).to.match(/muster status 12_04-bee --env ENV --json/).and.to.match(/Nothing was written\.$/)
  })

  it('an environment with its own registry project and no fleet project to file releases under', async () => {
    const {releaseProject: _none, ...withoutFleet} = registry
    const error = await refusal({group: '12_04-bee'}, {...withoutFleet, project: 'prod-registry'})
    expect(error.message).to.equal('environment production names its own registry project (prod-registry), and there is no fleet project to file releases under')
    expect(error.hint).to.match(/__base__\.registry\.project/)
  })
})
