// Certificates made at test time with openssl: a CA, a server certificate for 127.0.0.1, a client
// certificate, and a second ("rogue") CA with its own client certificate, which etcd must refuse.
import {execFileSync} from 'node:child_process'
import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

export interface TlsFiles {
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
  rogueCa: string
  rogueCert: string
  rogueKey: string
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, {cwd, stdio: ['ignore', 'ignore', 'pipe']})
}

function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`], dir)
}

function makeCert(dir: string, ca: string, name: string, extensions: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir)
  writeFileSync(join(dir, `${name}.ext`), extensions)
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir)
  chmodSync(join(dir, `${name}.key`), 0o600)
}

export function makeCertificates(dir: string): TlsFiles {
  makeCa(dir, 'ca')
  makeCa(dir, 'rogue-ca')
  makeCert(dir, 'ca', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n')
  makeCert(dir, 'ca', 'client', 'extendedKeyUsage=clientAuth\n')
  makeCert(dir, 'rogue-ca', 'rogue', 'extendedKeyUsage=clientAuth\n')
  const p = (name: string): string => join(dir, name)
  return {
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    rogueCa: p('rogue-ca.pem'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue.key'),
  }
}
