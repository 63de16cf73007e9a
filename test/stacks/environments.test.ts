// The stacks side of environments, pure parts: names, tags, ownership, Packer template and paths,
// orphan stacks, the bake's commands.
import {expect} from 'chai'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {orphansAmong} from '../../src/actions/stack.js'
import {collectChanges} from '../../src/stacks/changes.js'
import {formatMarkdown} from '../../src/ui/changes.js'
import {formatOrphans, formatOrphansMarkdown} from '../../src/ui/orphans.js'
import {formatPromoted} from '../../src/ui/promote.js'
import {formatRetentionSummary} from '../../src/ui/retention.js'
import {describePlan, type PromoteResult} from '../../src/actions/packer-promote.js'
import {ofEnvironment} from '../../src/aws/asg.js'
import {renderChefEnvironment} from '../../src/artifacts/chef-environment.js'
import {BUNDLED_TEMPLATES} from '../../src/artifacts/generate.js'
import {buildPackerTemplate, ENVIRONMENT_VAR, packerManifestPath, packerTemplatePath} from '../../src/artifacts/packer.js'
import {renderRole} from '../../src/artifacts/role.js'
import {ownershipOf, ownerTags, TAG_ENVIRONMENT, TAG_PROJECT} from '../../src/lib/tags.js'
import {selectEnvironment, stackName} from '../../src/nodes/environments.js'
import type {Group, NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'
import {fleetName, groupTags} from '../../src/stacks/fleet.js'
import {intentFromConfig, intentToConfig, emptyIntent, pinnedImageOf} from '../../src/stacks/intent.js'
import {readPins} from '../../src/stacks/pins.js'
import {groupArgs, stackConfigFileName} from '../../src/stacks/workspace.js'

function nodesOf(value: unknown, environment?: string): NodesFile {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'))
  return selectEnvironment(result.nodes, environment)
}

const base = {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-0123abcd', run_list: ['recipe[base]']}
const withEnvironments = {
  __environments__: {staging: {default: true, default_attributes: {environment: 'staging'}}, production: {region: 'us-west-2'}},
  __base__: base,
  web: {},
}
const groupIn = (nodes: NodesFile, name = 'web'): Group => {
  const g = nodes.groups.get(name)
  if (!g) throw new Error(`no ${name}`)
  return g
}
const opts = (g: Group, extra: Record<string, string> = {}) => ({flavor: 'current' as const, provisionScript: `#!/bin/sh\n${ENVIRONMENT_VAR}\n`, roleText: renderRole(g), project: 'alpha', ...extra})

describe('environments: stack names, config files and hints', () => {
  it('GROUP without environments, GROUP.ENV with them', () => {
    expect(stackName({name: 'web'})).to.equal('web')
    expect(stackName(groupIn(nodesOf(withEnvironments, 'production')))).to.equal('web.production')
    expect(stackConfigFileName({name: 'web'})).to.equal('Pulumi.web.yaml')
    expect(stackConfigFileName({name: 'web', environment: 'staging'})).to.equal('Pulumi.web.staging.yaml')
    expect(groupArgs({name: 'web', environment: 'staging'})).to.equal('web --env staging')
    expect(groupArgs('web')).to.equal('web')
  })

  it('orphan stacks: an environment\'s own whose group is gone, and stacks of no declared environment (from before environments, or of one renamed); without environments every stack that is not a group', () => {
    const groups = new Map([['web', {}], ['db', {}]])
    const names = ['web', 'web.staging', 'web.production', 'gone.staging', 'gone.production', 'gone']
    const declared = ['staging', 'production']
    // "web" is the stack from before the file had environments: no environment programs it any more, yet it may run a fleet.
    expect(orphansAmong(names, groups, 'staging', declared)).to.deep.equal(['gone.staging', 'web', 'gone'])
    expect(orphansAmong(names, groups, 'production', declared)).to.deep.equal(['gone.production', 'web', 'gone'])
    // "production" renamed "prod": its stacks are listed from every environment, none is prod's.
    expect(orphansAmong(['web.production', 'web.prod', 'web.staging'], groups, 'prod', ['staging', 'prod'])).to.deep.equal(['web.production'])
    expect(orphansAmong(['web.production', 'web.prod', 'web.staging'], groups, 'staging', ['staging', 'prod'])).to.deep.equal(['web.production'])
    expect(orphansAmong(names, groups, undefined)).to.deep.equal(['web.staging', 'web.production', 'gone.staging', 'gone.production', 'gone'])
  })
})

describe('environments: tags and ownership', () => {
  it('an environment\'s images are its own: not another environment\'s, nor a project\'s without environments', () => {
    const staging = {project: 'alpha', environment: 'staging'}
    expect(ownerTags(staging)).to.deep.equal({[TAG_PROJECT]: 'alpha', [TAG_ENVIRONMENT]: 'staging'})
    expect(ownerTags({project: 'alpha'})).to.deep.equal({[TAG_PROJECT]: 'alpha'})
    expect(ownershipOf(ownerTags(staging), staging)).to.equal('ours')
    expect(ownershipOf(ownerTags({project: 'alpha', environment: 'production'}), staging)).to.equal('other')
    expect(ownershipOf(ownerTags({project: 'alpha'}), staging)).to.equal('other')
    expect(ownershipOf(ownerTags(staging), {project: 'alpha'})).to.equal('other')
    expect(ownershipOf(ownerTags({project: 'alpha'}), {project: 'alpha'})).to.equal('ours')
    expect(ownershipOf({}, staging)).to.equal('legacy')
  })

  it('ASGs are the environment\'s by their environment tag', () => {
    const asgs: Array<{name: string; tags: Record<string, string>}> = [{name: 'web', tags: {}}, {name: 'web.staging', tags: {[TAG_ENVIRONMENT]: 'staging'}}, {name: 'web.production', tags: {[TAG_ENVIRONMENT]: 'production'}}]
    expect(ofEnvironment(asgs, 'staging').map((a) => a.name)).to.deep.equal(['web.staging'])
    expect(ofEnvironment(asgs, undefined).map((a) => a.name)).to.deep.equal(['web'])
  })

  it('fleet names and tags carry the environment; without one they are what they were', () => {
    const staging = groupIn(nodesOf(withEnvironments, 'staging'))
    expect(fleetName(staging)).to.equal('web.staging')
    expect(groupTags(staging)).to.deep.equal({group: 'web', 'muster:group': 'web', [TAG_ENVIRONMENT]: 'staging'})
    const plain = groupIn(nodesOf({__base__: base, web: {}}))
    expect(fleetName(plain)).to.equal('web')
    expect(groupTags(plain)).to.deep.equal({group: 'web', 'muster:group': 'web'})
  })

  it('validate counts muster:environment among muster\'s own tags in an environment', () => {
    const tags = Object.fromEntries(Array.from({length: 43}, (_, i) => [`t${i}`, 'x']))
    // 43 of the group's own + 7 of muster's = 50: fine without environments.
    expect(validateNodes(parseSource('nodes.json', JSON.stringify({__base__: base, web: {tags}}))).ok).to.equal(true)
    const result = validateNodes(parseSource('nodes.json', JSON.stringify({...withEnvironments, web: {tags}})))
    expect(result.ok).to.equal(false)
    expect(result.ok ? '' : result.diagnostics.map((d) => d.message).join('\n')).to.include(TAG_ENVIRONMENT)
  })
})

describe('environments: Packer template and paths', () => {
  it('template and manifest paths per environment; unchanged without environments', () => {
    expect(packerTemplatePath('web')).to.equal('packer/web.pkr.json')
    expect(packerManifestPath('web')).to.equal('.muster/manifests/web.json')
    expect(packerTemplatePath('web', 'staging')).to.equal('packer/web.staging.pkr.json')
    expect(packerManifestPath('web', 'staging')).to.equal('.muster/manifests/web.staging.json')
  })

  it('uploads environments/ENV.json and runs the provisioning script with MUSTER_ENVIRONMENT; tags and names carry the environment', () => {
    const nodes = nodesOf(withEnvironments, 'staging')
    const g = groupIn(nodes)
    const environmentText = renderChefEnvironment(nodes.environments.get('staging') as never)
    const {template, text} = buildPackerTemplate(g, opts(g, {environmentText}))
    expect(text).to.include('"source": "environments/staging.json"')
    expect(text).to.include('"destination": "/tmp/muster/environments/staging.json"')
    expect(text).to.include(`"${ENVIRONMENT_VAR}=staging"`)
    expect(text).to.include('"muster:environment": "staging"')
    expect(text).to.include('"Name": "web.staging"')
    expect(text).to.include('"muster-bake-web.staging"')
    expect(text).to.include('"output": ".muster/manifests/web.staging.json"')
    expect(JSON.stringify(template)).to.include('web.staging ${local.timestamp}')
  })

  it('the environment\'s Chef attributes are part of the template hash', () => {
    const g = groupIn(nodesOf(withEnvironments, 'staging'))
    expect(buildPackerTemplate(g, opts(g, {environmentText: '{"a": 1}'})).hash).not.to.equal(buildPackerTemplate(g, opts(g, {environmentText: '{"a": 2}'})).hash)
  })

  it('without environments the template names no environment at all', () => {
    const g = groupIn(nodesOf({__base__: base, web: {}}))
    const {text} = buildPackerTemplate(g, opts(g))
    expect(text).not.to.include(TAG_ENVIRONMENT)
    expect(text).not.to.include('environments/')
    expect(text).not.to.include(ENVIRONMENT_VAR)
  })

  it('the default provisioning script stays byte for byte what it was; the environments default runs chef-solo --environment', () => {
    const plain = readFileSync(join(BUNDLED_TEMPLATES, 'packer', 'provision.sh'), 'utf8')
    expect(plain).not.to.include(ENVIRONMENT_VAR)
    const environments = readFileSync(join(BUNDLED_TEMPLATES, 'packer', 'provision-environments.sh'), 'utf8')
    expect(environments).to.include('--environment "$MUSTER_ENVIRONMENT"')
    expect(environments).to.include('environment_path')
  })
})

describe('environments: retention\'s summary', () => {
  it('says the images it left alone may be another environment\'s (a promoted copy in this region, a project without environments), not only another project\'s', () => {
    const line = formatRetentionSummary({group: 'web', keep: 1, dryRun: true, kept: [], removed: [], deregistered: [], deletedSnapshots: [], failures: [], project: 'muster', legacy: [], otherProjects: 4})
    expect(line).to.include('4 images of other projects or environments left alone')
  })
})

describe('environments: the pinned image in the stack intent', () => {
  const pinned = {id: 'ami-0123456789abcdef0', from: 'staging', sourceId: 'ami-0fedcba987654321f', sourceRegion: 'us-west-2', promotedAt: '2026-11-26T01:00:00.000Z'}

  it('round-trips through the stack config', () => {
    const config = intentToConfig({...emptyIntent(), image: pinned})
    expect(intentFromConfig(config).image).to.deep.equal(pinned)
    expect(intentFromConfig(intentToConfig(emptyIntent())).image).to.equal(undefined)
  })

  it('a hand-edited value that is not a pinned image is ignored', () => {
    expect(intentFromConfig({'muster:image': {value: '{"id": "not-an-ami"}'}}).image).to.equal(undefined)
    expect(intentFromConfig({'muster:image': {value: 'nonsense'}}).image).to.equal(undefined)
    expect(pinnedImageOf({'muster:image': JSON.stringify(pinned)})).to.deep.equal(pinned)
  })

  it('retention reads the pins of every environment with a config file of the group, also one renamed or dropped from the nodes file', () => {
    const root = mkdtempSync(join(tmpdir(), 'muster-pins-'))
    try {
      mkdirSync(join(root, 'stacks'))
      const config = (image: typeof pinned): string => `config:\n  muster:image: '${JSON.stringify(image)}'\n`
      writeFileSync(join(root, 'stacks', 'Pulumi.web.staging.yaml'), 'config:\n  muster:bake: "true"\n')
      // "production" was renamed "prod" in the nodes file; its stack still runs what it was promoted to.
      writeFileSync(join(root, 'stacks', 'Pulumi.web.production.yaml'), config(pinned))
      writeFileSync(join(root, 'stacks', 'Pulumi.web.prod.yaml'), config({...pinned, id: 'ami-0aaaaaaaaaaaaaaaa'}))
      // Another group's files are not this group's.
      writeFileSync(join(root, 'stacks', 'Pulumi.web-2.production.yaml'), config({...pinned, id: 'ami-0bbbbbbbbbbbbbbbb'}))
      writeFileSync(join(root, 'stacks', 'Pulumi.web.yaml'), config({...pinned, id: 'ami-0cccccccccccccccc'}))
      const pins = readPins(root, 'web', ['staging', 'prod'])
      expect(pins.map((p) => [p.environment, p.file, p.image.id])).to.deep.equal([
        ['prod', join('stacks', 'Pulumi.web.prod.yaml'), 'ami-0aaaaaaaaaaaaaaaa'],
        ['production', join('stacks', 'Pulumi.web.production.yaml'), pinned.id],
      ])
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })
})

describe('environments: review', () => {
  it('the pull-request Markdown names the environment in its heading and every stack', () => {
    const md = formatMarkdown([collectChanges('web.production', [])], [{stack: 'db.production', message: 'boom'}], {environment: 'production'})
    expect(md).to.include('## muster preview: environment `production`')
    expect(md).to.include('| stack | create | update | replace | delete |')
    expect(md).to.include('| web.production | 0 | 0 | 0 | 0 |')
    expect(md).to.include('### db.production: error')
    // Without environments it is what it was.
    expect(formatMarkdown([collectChanges('web', [])])).to.match(/^## muster preview\n\n\| group \|/)
  })

  it('an orphan stack of an environment is taken down with destroy GROUP --env ENV', () => {
    expect(formatOrphans(['gone.staging'], 'nodes.json', 'staging')).to.include('muster destroy gone --env staging --remove   takes gone.staging down')
    expect(formatOrphansMarkdown(['gone.staging'], 'nodes.json', 'staging')).to.include('| gone.staging | `muster destroy gone --env staging --remove` |')
    expect(formatOrphans(['gone'], 'nodes.json')).to.include('muster destroy gone --remove')
    // In an environment, GROUP names GROUP.ENV: the stack from before environments is named through a file without them; GROUP.OLD as it is.
    expect(formatOrphans(['web'], 'nodes.json', 'staging')).to.include('muster destroy web --nodes NODES-FILE-WITHOUT-ENVIRONMENTS --remove   takes web down')
    expect(formatOrphans(['web.production'], 'nodes.json', 'staging')).to.include('muster destroy web.production --remove   takes web.production down')
  })
})

describe('environments: promotion as said', () => {
  const plan = {group: 'web', from: 'staging', to: 'production', source: {id: 'ami-0aaa', region: 'us-west-2'}, target: {region: 'us-east-1', id: undefined}, copy: 'copy' as const, current: undefined}

  it('the plan says what is copied where and that production\'s own bake is off', () => {
    expect(describePlan(plan)).to.equal("web: staging's ami-0aaa is copied from us-west-2 to us-east-1 (tags included) and production runs the copy; production's own bake is off while the image is pinned")
    expect(describePlan({...plan, copy: 'none', target: {region: 'us-west-2', id: 'ami-0aaa'}})).to.include('production (us-west-2) runs ami-0aaa, the image staging runs')
    const pinned = {id: 'ami-0aaa', from: 'staging', sourceId: 'ami-0aaa', sourceRegion: 'us-west-2', promotedAt: '2026-11-25T00:00:00.000Z'}
    // The same promotion again says so; another image names what it replaces.
    expect(describePlan({...plan, copy: 'none', target: {region: 'us-west-2', id: 'ami-0aaa'}, current: pinned})).to.include('; it already is (nothing to change)')
    expect(describePlan({...plan, copy: 'none', target: {region: 'us-west-2', id: 'ami-0ccc'}, current: pinned})).to.include('; it was pinned to ami-0aaa (from staging)')
  })

  it('the result line names the image production runs and where it came from', () => {
    const result = {plan, image: 'ami-0bbb', previewOnly: false, stack: {backend: '', groups: []}} as PromoteResult
    expect(formatPromoted(result)).to.equal("web: production runs ami-0bbb (staging's ami-0aaa, copied from us-west-2)")
  })
})
