// Why a TLS connection to etcd failed. gRPC reports a refused handshake as "UNAVAILABLE … Last
// error: null" as often as with its cause, so on such a failure muster shakes hands once itself,
// with the same CA, certificate and key, and reports what TLS said.
import {connect} from 'node:tls'

import type {RegistrySecurity} from './security.js'

const PROBE_MS = 3000

/** What went wrong with TLS at the endpoint, or undefined when the handshake and a read succeed. */
export function probeTls(endpoint: string, tls: NonNullable<RegistrySecurity['tls']>): Promise<string | undefined> {
  const url = new URL(endpoint)
  return new Promise((resolve) => {
    let settled = false
    const done = (why: string | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(why)
    }
    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port),
      ALPNProtocols: ['h2'],
      ...(tls.ca ? {ca: tls.ca} : {}),
      ...(tls.cert ? {cert: tls.cert} : {}),
      ...(tls.key ? {key: tls.key} : {}),
    })
    // With TLS 1.3 the server's refusal of a client certificate arrives after the client's side of
    // the handshake: wait briefly for it before calling the connection good.
    socket.once('secureConnect', () => setTimeout(() => done(undefined), 300))
    socket.once('error', (error: NodeJS.ErrnoException) => done(describeTlsError(error)))
    const timer = setTimeout(() => done(undefined), PROBE_MS)
  })
}

function describeTlsError(error: NodeJS.ErrnoException): string {
  const message = error.message
  if (/alert bad certificate|alert certificate required|alert unknown ca|alert 116|alert number 4[28]/i.test(message)) return 'etcd refused this client\'s certificate (not signed by a CA etcd trusts, or none given)'
  if (error.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || error.code === 'SELF_SIGNED_CERT_IN_CHAIN' || error.code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || error.code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY') return `etcd's certificate is not signed by the CA given (${error.code})`
  if (error.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'etcd\'s certificate does not name this endpoint\'s host'
  if (error.code === 'CERT_HAS_EXPIRED') return 'etcd\'s certificate has expired'
  if (error.code === 'ECONNREFUSED') return 'connection refused'
  return message.split('\n')[0] ?? message
}
