// The paper's example, end to end through the built CLI: every artifact byte for byte.
import {expect} from 'chai'
import {copyFileSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {listFiles, makeTempDir, removeDir, repoRoot, runMuster} from '../support/cli.js'

const fixtures = join(repoRoot, 'test', 'fixtures')
const golden = (name: string): string => readFileSync(join(fixtures, 'golden', name), 'utf8')

describe('golden: the paper\'s example', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTempDir()
    copyFileSync(join(fixtures, 'paper-nodes.json'), join(dir, 'nodes.json'))
  })
  afterEach(() => removeDir(dir))

  it('role:create 12_04-bee prints the paper\'s role (with its base-server typo fixed)', () => {
    const result = runMuster(['role:create', '12_04-bee'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.match(/created\s+roles\/12_04-bee\.json/)
    // The paper's text with `role[seatgeek::server]` → `recipe[seatgeek::base-server]`.
    expect(readFileSync(join(dir, 'roles/12_04-bee.json'), 'utf8')).to.equal(golden('role-12_04-bee.paper.json'))
  })

  it('autoscale:create writes the paper\'s dna and creates the role', () => {
    const result = runMuster(['autoscale:create', '12_04-bee'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    expect(readFileSync(join(dir, 'dna/asg/12_04-bee.json'), 'utf8')).to.equal(golden('dna-12_04-bee.paper.json'))
    expect(readFileSync(join(dir, 'roles/12_04-bee.json'), 'utf8')).to.equal(golden('role-12_04-bee.paper.json'))
  })

  it('generate writes every artifact, each equal to its golden file', () => {
    const result = runMuster(['generate'], {cwd: dir})
    expect(result.code, result.stderr).to.equal(0)
    expect(listFiles(dir)).to.deep.equal([
      'dna/asg/12_04-bee.json',
      'nodes.json',
      'packer/12_04-bee.pkr.json',
      'packer/12_04-www.pkr.json',
      'roles/12_04-bee.json',
      'roles/12_04-www.json',
      'templates/muster-agent.service',
      'templates/muster-converge.sh',
      'templates/packer/provision.sh',
    ])
    expect(readFileSync(join(dir, 'roles/12_04-www.json'), 'utf8')).to.equal(golden('role-12_04-www.json'))
    expect(readFileSync(join(dir, 'packer/12_04-bee.pkr.json'), 'utf8')).to.equal(golden('12_04-bee.pkr.json'))
    expect(readFileSync(join(dir, 'packer/12_04-www.pkr.json'), 'utf8')).to.equal(golden('12_04-www.pkr.json'))
    // The www group has autoscale: false (inherited), so it has no asg dna.
    expect(listFiles(dir)).not.to.include('dna/asg/12_04-www.json')
  })

  it('the repository root is the paper\'s project and its committed artifacts are current', () => {
    const result = runMuster(['generate', '--check'], {cwd: repoRoot})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    expect(readFileSync(join(repoRoot, 'nodes.json'), 'utf8')).to.equal(readFileSync(join(fixtures, 'paper-nodes.json'), 'utf8'))
  })
})
