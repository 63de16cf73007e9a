// Component proof: the Pulumi CLI the stack suites run (built by scripts/ci/install-pulumi.sh)
// starts and answers through the Automation API on a file backend. What muster does with the
// engine (its command resource, previews, replaces, a held lock, an S3 backend) is tested through
// muster's own stack session in session.test.ts.
import {expect} from 'chai'

import {requireTool} from '../support/integration.js'
import {createPulumiSandbox, type PulumiSandbox} from '../support/pulumi.js'

describe('Pulumi engine (component)', function () {
  this.timeout(120_000)
  let sandbox: PulumiSandbox | undefined

  before(async function () {
    requireTool(this, 'pulumi', 'scripts/ci/install-pulumi.sh')
    sandbox = await createPulumiSandbox()
  })

  after(async function () {
    await sandbox?.cleanup()
  })

  it('runs an inline program on a file backend and reads its outputs back from the state', async function () {
    if (!sandbox) throw new Error('sandbox not created')
    expect(sandbox.backendUrl).to.match(/^file:\/\//)
    const stack = await sandbox.stack({stackName: 'smoke', program: async () => ({answer: 42})})
    const result = await stack.up()
    expect(result.summary.result).to.equal('succeeded')
    expect(result.outputs.answer?.value).to.equal(42)
    expect((await stack.outputs()).answer?.value).to.equal(42)
  })
})
