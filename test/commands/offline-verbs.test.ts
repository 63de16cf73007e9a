// The offline verbs end to end through the built CLI, in temp directories.
import {expect} from 'chai'
import {copyFileSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {stringify} from 'yaml'

import {listFiles, makeTempDir, removeDir, repoRoot, runMuster} from '../support/cli.js'

const paper = join(repoRoot, 'test', 'fixtures', 'paper-nodes.json')

describe('offline verbs', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTempDir()
    copyFileSync(paper, join(dir, 'nodes.json'))
  })
  afterEach(() => removeDir(dir))

  it('validate prints a one-line summary and exits 0', () => {
    const result = runMuster(['validate'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.equal('nodes.json: ok — 2 groups (12_04-bee, 12_04-www), 1 autoscaled, 2 baked\n')
  })

  it('show --json prints the resolved group with the nodes file\'s key names', () => {
    const result = runMuster(['show', '12_04-bee', '--json'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    const group = JSON.parse(result.stdout) as Record<string, unknown>
    expect(group).to.include({name: '12_04-bee', instance_type: 'm1.large', region: 'us-east-1', source_ami: 'ami-1ebb2077'})
    expect(group.autoscale).to.deep.equal({timeout: 120, node_min: 2, node_max: 2})
    expect(group.security_groups).to.deep.equal(['external', 'internal', 'bee'])
    expect(group.default_attributes).to.deep.equal({environment: 'production', key: 'value', other_key: 'value'})
    expect(group.post_run_list).to.deep.equal(['recipe[seatgeek::notify-services]', 'recipe[sudo::default]'])
  })

  it('show of an unknown group names the groups there are', () => {
    const result = runMuster(['show', 'nope'], {cwd: dir})
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('no group "nope" in nodes.json')
    expect(result.stderr).to.include('12_04-bee, 12_04-www')
    expect(result.stderr).not.to.match(/\n\s+at /)
  })

  it('ls --json lists the groups, __base__ left out', () => {
    const result = runMuster(['ls', '--json'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    const rows = JSON.parse(result.stdout) as Array<Record<string, unknown>>
    expect(rows.map((r) => [r.name, r.autoscale, r.instance_type])).to.deep.equal([
      ['12_04-bee', '2-2', 'm1.large'],
      ['12_04-www', 'no', 'm3.xlarge'],
    ])
    const table = runMuster(['ls'], {cwd: dir})
    // The column is named after the key it shows: `type` is the Packer builder, a different setting.
    expect(table.stdout.split('\n')[0]).to.match(/^GROUP\s+INSTANCE_TYPE\s+REGION\s+ASG/)
    expect(table.stdout.split('\n')[1]).to.match(/^12_04-bee\s+m1\.large\s+us-east-1\s+2-2\s/)
  })

  it('role:create refuses to overwrite a changed role and points to role:update; role:update shows the diff', () => {
    expect(runMuster(['role:create', '12_04-www'], {cwd: dir}).code).to.equal(0)
    const edited = readFileSync(join(dir, 'roles/12_04-www.json'), 'utf8').replace('"key": "value"', '"key": "edited"')
    writeFileSync(join(dir, 'roles/12_04-www.json'), edited)
    const refused = runMuster(['role:create', '12_04-www'], {cwd: dir})
    expect(refused.code).to.equal(1)
    expect(refused.stderr).to.include('roles/12_04-www.json already exists with other content; nothing was written')
    expect(refused.stderr).to.include('muster role:update 12_04-www')
    expect(readFileSync(join(dir, 'roles/12_04-www.json'), 'utf8')).to.equal(edited)

    const updated = runMuster(['roles:update', '12_04-www'], {cwd: dir})
    expect(updated.code, updated.stderr).to.equal(0)
    expect(updated.stdout).to.include('updated  roles/12_04-www.json')
    expect(updated.stdout).to.include('-        "key": "edited"')
    expect(updated.stdout).to.include('+        "key": "value"')
    expect(readFileSync(join(dir, 'roles/12_04-www.json'), 'utf8')).not.to.include('edited')
  })

  it('--check exits 1 on missing or stale files and writes nothing; 0 when current', () => {
    const missing = runMuster(['generate', '--check'], {cwd: dir})
    expect(missing.code).to.equal(1)
    expect(missing.stdout).to.match(/missing\s+roles\/12_04-bee\.json/)
    expect(listFiles(dir)).to.deep.equal(['nodes.json'])
    expect(runMuster(['generate'], {cwd: dir}).code).to.equal(0)
    expect(runMuster(['generate', '--check'], {cwd: dir}).code).to.equal(0)
    // Touch the nodes file: the bee role and its template go stale.
    const nodes = readFileSync(join(dir, 'nodes.json'), 'utf8').replace('"other_key": "value"', '"other_key": "changed"')
    writeFileSync(join(dir, 'nodes.json'), nodes)
    const before = readFileSync(join(dir, 'roles/12_04-bee.json'), 'utf8')
    const stale = runMuster(['role:update', '12_04-bee', '--check', '--json'], {cwd: dir})
    expect(stale.code).to.equal(1)
    const report = JSON.parse(stale.stdout) as {results: Array<{path: string; status: string}>; upToDate: boolean}
    expect(report.upToDate).to.equal(false)
    expect(report.results).to.deep.include({path: 'roles/12_04-bee.json', group: '12_04-bee', status: 'stale', diff: (report.results[0] as {diff?: string}).diff})
    expect(readFileSync(join(dir, 'roles/12_04-bee.json'), 'utf8')).to.equal(before)
  })

  it('autoscale:create refuses a group without autoscale and says how to add it', () => {
    const result = runMuster(['autoscale:create', '12_04-www'], {cwd: dir})
    expect(result.code).to.equal(1)
    expect(result.stderr).to.include('group "12_04-www" has autoscale: false')
    expect(result.stderr).to.include('"autoscale": {"timeout"')
    expect(listFiles(dir)).to.deep.equal(['nodes.json'])
  })

  it('packer:create __base__ makes the base image\'s template', () => {
    const result = runMuster(['packer:create', '__base__'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    const template = JSON.parse(readFileSync(join(dir, 'packer/__base__.pkr.json'), 'utf8')) as {source: Record<string, Record<string, {ami_name: string}>>}
    expect(template.source['amazon-ebs']?.image?.ami_name).to.match(/^__base__ /)
    expect(listFiles(dir)).to.include('roles/__base__.json')
  })

  it('reads nodes.yaml, --nodes and MUSTER_NODES alike, with the same artifacts', () => {
    const yamlDir = makeTempDir()
    try {
      const value = JSON.parse(readFileSync(paper, 'utf8').replace(/'([^']*)'/, '"$1"')) as unknown
      mkdirSync(join(yamlDir, 'infra'))
      writeFileSync(join(yamlDir, 'infra', 'fleet.yaml'), stringify(value))
      expect(runMuster(['generate', '--nodes', 'infra/fleet.yaml'], {cwd: yamlDir}).code).to.equal(0)
      expect(runMuster(['generate'], {cwd: dir}).code).to.equal(0)
      for (const file of ['roles/12_04-bee.json', 'packer/12_04-bee.pkr.json', 'dna/asg/12_04-bee.json']) {
        expect(readFileSync(join(yamlDir, file), 'utf8'), file).to.equal(readFileSync(join(dir, file), 'utf8'))
      }
      const viaEnv = runMuster(['validate'], {cwd: yamlDir, env: {MUSTER_NODES: 'infra/fleet.yaml'}})
      expect(viaEnv.code, viaEnv.stderr).to.equal(0)
      expect(viaEnv.stdout).to.match(/^infra\/fleet\.yaml: ok/)
    } finally {
      removeDir(yamlDir)
    }
  })

  it('says where to put a nodes file when there is none', () => {
    const empty = makeTempDir()
    try {
      const result = runMuster(['validate'], {cwd: empty})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.include('no nodes file in')
      expect(result.stderr).to.include('--nodes PATH')
    } finally {
      removeDir(empty)
    }
  })
})

describe('services and dependencies', () => {
  // api and web depend on each other (a cycle: a warning, not an error); frontend runs no service
  // but calls api; nginx is not a service cookbook.
  const services = {
    __base__: {
      region: 'us-east-1',
      instance_type: 'm5.large',
      source_ami: 'ami-1ebb2077',
      service_cookbooks: ['shop'],
      services: {api: {port: 8080, health_check: '/health', depends_on: ['web']}, web: {port: 80, depends_on: ['api']}},
    },
    api: {run_list: ['recipe[shop::api]']},
    web: {run_list: ['recipe[shop-service::web]', 'recipe[shop-service::delete-old]']},
    frontend: {depends_on: ['api'], run_list: ['recipe[nginx]']},
  }
  let dir: string
  beforeEach(() => {
    dir = makeTempDir()
    writeFileSync(join(dir, 'nodes.json'), `${JSON.stringify(services, null, 2)}\n`)
  })
  afterEach(() => removeDir(dir))

  it('validate warns about a dependency cycle on stderr and exits 0', () => {
    const result = runMuster(['validate'], {cwd: dir, env: {NO_COLOR: '1'}})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.equal('nodes.json: ok — 3 groups (api, web, frontend), 0 autoscaled, 3 baked\n')
    expect(result.stderr).to.equal('Warning: nodes.json: dependency cycle api → web → api (the nodes that run each service depend on the next)\n')
  })

  it('validate --json keeps stdout JSON and gives the warnings there too', () => {
    const result = runMuster(['validate', '--json'], {cwd: dir, env: {NO_COLOR: '1'}})
    expect(result.code, result.stderr).to.equal(0)
    expect(JSON.parse(result.stdout)).to.deep.equal({
      file: 'nodes.json',
      groups: ['__base__', 'api', 'web', 'frontend'],
      warnings: ['nodes.json: dependency cycle api → web → api (the nodes that run each service depend on the next)'],
    })
  })

  it('validate of the paper\'s file gives no warnings', () => {
    copyFileSync(paper, join(dir, 'nodes.json'))
    const result = runMuster(['validate', '--json'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    expect((JSON.parse(result.stdout) as {warnings: unknown}).warnings).to.deep.equal([])
    expect(result.stderr).to.equal('')
  })

  it('show prints the services a group runs and what it depends on', () => {
    const result = runMuster(['show', 'api'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.contain(
      [
        'services_run:',
        '  - name: api',
        '    cookbook: shop',
        '    recipe: recipe[shop::api]',
        '    port: 8080',
        '    health_check: /health',
        'depends_on_resolved:',
        '  - web',
        '',
      ].join('\n'),
    )
    const json = runMuster(['show', 'frontend', '--json'], {cwd: dir})
    expect(json.code, json.stderr).to.equal(0)
    const shown = JSON.parse(json.stdout) as Record<string, unknown>
    expect(shown).to.deep.include({services_run: [], depends_on: ['api'], depends_on_resolved: ['api'], service_cookbooks: ['shop']})
    const web = JSON.parse(runMuster(['show', 'web', '--json'], {cwd: dir}).stdout) as Record<string, unknown>
    expect(web.services_run).to.deep.equal([{name: 'web', cookbook: 'shop-service', recipe: 'recipe[shop-service::web]', port: 80}])
    expect(web.depends_on_resolved).to.deep.equal(['api'])
  })

  it('ls has a SERVICES column, and services in --json', () => {
    const table = runMuster(['ls'], {cwd: dir})
    expect(table.code, table.stderr).to.equal(0)
    expect(table.stdout).to.equal(
      [
        'GROUP     INSTANCE_TYPE  REGION     ASG  IMAGE                    RECIPES  SERVICES  DESCRIPTION',
        'api       m5.large       us-east-1  no   baked from ami-1ebb2077  1        api',
        'web       m5.large       us-east-1  no   baked from ami-1ebb2077  2        web',
        'frontend  m5.large       us-east-1  no   baked from ami-1ebb2077  1        -',
        '',
      ].join('\n'),
    )
    copyFileSync(paper, join(dir, 'nodes.json'))
    const rows = JSON.parse(runMuster(['ls', '--json'], {cwd: dir}).stdout) as Array<{name: string; services: string[]}>
    expect(rows.map((r) => [r.name, r.services])).to.deep.equal([
      ['12_04-bee', ['api-workers', 'cronq-workers', 'djjob']],
      ['12_04-www', []],
    ])
  })

  it('every verb refuses a dependency on a service no group runs, and writes nothing', () => {
    const broken = {...services, frontend: {depends_on: ['ap'], run_list: ['recipe[nginx]']}}
    writeFileSync(join(dir, 'nodes.json'), `${JSON.stringify(broken, null, 2)}\n`)
    for (const verb of [['validate'], ['show', 'api'], ['ls'], ['generate']]) {
      const result = runMuster(verb, {cwd: dir})
      expect(result.code, verb.join(' ')).to.equal(1)
      expect(result.stderr, verb.join(' ')).to.contain('nodes.json:38:7: frontend.depends_on[0]: no group runs service "ap"; did you mean "api"? (services run: api, web)')
    }
    expect(listFiles(dir)).to.deep.equal(['nodes.json'])
  })
})

describe('help', () => {
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {hidden?: boolean; examples?: unknown[]; summary?: string}>}
  const visible = Object.entries(manifest.commands).filter(([, c]) => !c.hidden)

  it('every command has a summary and examples', () => {
    expect(visible.length).to.be.greaterThan(7)
    for (const [id, command] of visible) {
      expect(command.summary, id).to.be.a('string').and.not.empty
      expect(command.examples, id).to.be.an('array').with.length.greaterThan(0)
    }
  })

  it('--help of a verb prints its examples', () => {
    const result = runMuster(['role:create', '--help'], {cwd: repoRoot})
    expect(result.code).to.equal(0)
    expect(result.stdout).to.include('EXAMPLES')
    expect(result.stdout).to.include('muster role:create 12_04-bee')
  })
})
