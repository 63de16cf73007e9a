// The agent's identity from the nodes file (src/agent/identity.ts): what it says when a node has no dna.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {expect} from 'chai'

import {loadIdentity} from '../../src/agent/identity.js'
import {UserError} from '../../src/errors.js'

describe('agent identity: a node without dna', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'muster-identity-'))
    const machine = {region: 'us-east-1', instance_type: 't3.small', source_ami: 'ami-12345678'}
    writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: machine, fleet: {autoscale: {timeout: 60, node_min: 1, node_max: 2}}, single: {}}))
    mkdirSync(join(dir, 'dna'))
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  const refusal = (group: string): UserError => {
    try {
      loadIdentity({group, nodes: undefined, dna: undefined, node: 'n-1', address: '10.0.0.1', cwd: dir, env: {}})
    } catch (error) {
      expect(error).to.be.instanceOf(UserError)
      return error as UserError
    }
    throw new Error('expected a refusal')
  }

  it('points an autoscaled group at autoscale:create', () => {
    expect(refusal('fleet').hint).to.equal('Run "muster autoscale:create fleet" to write dna/asg/fleet.json, or give --dna FILE.')
  })

  it('points a group with autoscale: false at instance:create, which autoscale:create would refuse', () => {
    const error = refusal('single')
    expect(error.message).to.match(/^no dna for group single: looked for /)
    expect(error.hint).to.contain('"muster instance:create single --name NAME"').and.to.contain('dna/instances/single-INSTANCEID.json').and.not.to.contain('autoscale:create')
  })
})
