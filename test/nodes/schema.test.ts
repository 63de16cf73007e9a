import {Ajv} from 'ajv'
import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'yaml'

import {nodesJsonSchema} from '../../src/nodes/schema.js'
import {repoRoot} from '../support/cli.js'

describe('published JSON Schema', () => {
  const committed = JSON.parse(readFileSync(join(repoRoot, 'schema', 'nodes.schema.json'), 'utf8')) as Record<string, unknown>

  it('is generated from the schema the CLI validates with (run `npm run schema` when this fails)', () => {
    expect(committed).to.deep.equal(nodesJsonSchema())
  })

  it('accepts the paper\'s nodes file and rejects what the CLI rejects', () => {
    const validate = new Ajv({strict: false}).compile(committed)
    // The paper's file has a single-quoted string: read it as the CLI does, with yaml.
    expect(validate(parse(readFileSync(join(repoRoot, 'nodes.json'), 'utf8'))), JSON.stringify(validate.errors)).to.equal(true)
    expect(validate({web: {instance_typ: 'm5.large'}})).to.equal(false)
    expect(validate({web: {autoscale: true}})).to.equal(false)
    expect(validate({'bad name': {}})).to.equal(false)
    expect(validate({web: {run_list: ['nginx']}})).to.equal(false)
  })
})
