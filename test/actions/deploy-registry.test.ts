// How instance:deploy and the deploy verbs name a failed registry call (registryCall): a refusal
// is a refusal, not "cannot reach".
import {expect} from 'chai'

import {registryCall} from '../../src/actions/deploy.js'
import {UserError} from '../../src/errors.js'

const fail = async (error: Error): Promise<UserError> => {
  const thrown = await registryCall(['http://127.0.0.1:2379'], () => Promise.reject(error)).catch((e: unknown) => e)
  expect(thrown).to.be.instanceOf(UserError)
  return thrown as UserError
}

describe('registryCall (src/actions/deploy.ts)', () => {
  it('says a user without the right was refused, and which user to give', async () => {
    const error = await fail(new Error('etcdserver: permission denied'))
    expect(error.message).to.equal('the registry at http://127.0.0.1:2379 refused: etcdserver: permission denied')
    expect(error.hint).to.contain('muster-PROJECT-operator').and.to.contain('--etcd-user').and.to.match(/Nothing was written to the registry\.$/)
  })

  it('says a wrong password is one', async () => {
    const error = await fail(new Error('etcdserver: authentication failed, invalid user ID or password'))
    expect(error.message).to.equal('the registry at http://127.0.0.1:2379 refused the user name or password')
    expect(error.hint).to.match(/^Check --etcd-user and the password .* Nothing was written to the registry\.$/)
  })

  it('says an unreachable registry cannot be reached', async () => {
    const error = await fail(new Error('14 UNAVAILABLE: No connection established'))
    expect(error.message).to.match(/^cannot reach the registry at http:\/\/127\.0\.0\.1:2379: /)
    expect(error.hint).to.equal('Check --etcd (or MUSTER_ETCD_ENDPOINTS) and that etcd is running. Nothing was written to the registry.')
  })
})
