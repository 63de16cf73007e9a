import {expect} from 'chai'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

import {fromInstanceMetadata} from '../../src/agent/identity.js'
import {UserError} from '../../src/errors.js'

// A stand-in for EC2's metadata service that, like IMDSv2 with tokens required, refuses any read
// without the token it issued.
function imds(): Promise<{server: Server; url: string; requests: string[]}> {
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    if (req.method === 'PUT' && req.url === '/latest/api/token' && req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return res.end('tok-1')
    if (req.headers['x-aws-ec2-metadata-token'] !== 'tok-1') return res.writeHead(401).end()
    if (req.url === '/latest/meta-data/instance-id') return res.end('i-0123456789abcdef0')
    if (req.url === '/latest/meta-data/local-ipv4') return res.end('10.1.2.3\n')
    return res.writeHead(404).end()
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests})))
}

describe('agent identity from IMDSv2', () => {
  it('takes a token first, then reads the instance id and private address with it', async () => {
    const {server, url, requests} = await imds()
    try {
      expect(await fromInstanceMetadata({MUSTER_IMDS_ENDPOINT: url})).to.deep.equal({node: 'i-0123456789abcdef0', address: '10.1.2.3'})
      expect(requests[0]).to.equal('PUT /latest/api/token')
    } finally {
      server.close()
    }
  })

  it('says to give --node and --address when there is no metadata service', async () => {
    const error = await fromInstanceMetadata({MUSTER_IMDS_ENDPOINT: 'http://127.0.0.1:1'}, 500).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).to.be.instanceOf(UserError)
    expect((error as UserError).hint).to.match(/--node ID and --address ADDR/)
  })
})
