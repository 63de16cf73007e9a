import {expect} from 'chai'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {DEFAULT_PROJECT_NAME, readProjectName} from '../../src/artifacts/project-name.js'
import {UserError} from '../../src/errors.js'
import {DEFAULT_PROJECT_YAML} from '../../src/stacks/workspace.js'

describe('readProjectName', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'muster-project-name-'))
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('reads name from Pulumi.yaml', () => {
    writeFileSync(join(dir, 'Pulumi.yaml'), 'name: alpha\nruntime: nodejs\n')
    expect(readProjectName(dir)).to.equal('alpha')
  })

  it("without Pulumi.yaml, the name muster's default Pulumi.yaml gives (so templates made before the first stack verb agree)", () => {
    expect(readProjectName(dir)).to.equal(DEFAULT_PROJECT_NAME)
    expect(DEFAULT_PROJECT_YAML).to.match(new RegExp(`^name: ${DEFAULT_PROJECT_NAME}$`, 'm'))
  })

  it('refuses a Pulumi.yaml without a name, naming the file', () => {
    writeFileSync(join(dir, 'Pulumi.yaml'), 'runtime: nodejs\n')
    expect(() => readProjectName(dir)).to.throw(UserError, `${join(dir, 'Pulumi.yaml')} has no project name`)
  })
})
