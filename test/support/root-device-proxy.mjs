// The root-device proxy of test/support/moto.ts (startRootDeviceProxy), as a process of its own:
// the tests run the CLI with spawnSync, which blocks the test process, so a proxy inside it would
// never answer Packer. Usage: node root-device-proxy.mjs LISTEN_PORT MOTO_PORT
// Passes every request to moto on 127.0.0.1:MOTO_PORT and rewrites
// <rootDeviceType>standard</rootDeviceType> to ebs in the answers; GET /__rewrites says how many
// answers it rewrote.
import {createServer, request} from 'node:http'

const [listenPort, motoPort] = process.argv.slice(2).map(Number)
let rewrites = 0
const server = createServer((incoming, outgoing) => {
  if (incoming.method === 'GET' && incoming.url === '/__rewrites') {
    outgoing.end(String(rewrites))
    return
  }
  const forward = request({host: '127.0.0.1', port: motoPort, method: incoming.method, path: incoming.url, headers: {...incoming.headers, host: `127.0.0.1:${motoPort}`}}, (answer) => {
    const chunks = []
    answer.on('data', (chunk) => chunks.push(chunk))
    answer.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const rewritten = text.replaceAll('<rootDeviceType>standard</rootDeviceType>', '<rootDeviceType>ebs</rootDeviceType>')
      if (rewritten !== text) rewrites++
      const body = Buffer.from(rewritten, 'utf8')
      const headers = {...answer.headers, 'content-length': String(body.length)}
      delete headers['transfer-encoding']
      outgoing.writeHead(answer.statusCode ?? 502, headers)
      outgoing.end(body)
    })
  })
  forward.on('error', (error) => {
    outgoing.writeHead(502)
    outgoing.end(String(error))
  })
  incoming.pipe(forward)
})
server.listen(listenPort, '127.0.0.1')
process.on('SIGTERM', () => server.close(() => process.exit(0)))
