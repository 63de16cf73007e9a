// How the agent gets into the project for the bake: muster's own build of it (dist/muster-agent.mjs
// in muster's package, made by scripts/build-agent.mjs) is copied to .muster/agent/muster-agent.mjs
// before each bake, and its sha256 goes to Packer as a variable the install step checks. The copy is
// what Packer's file provisioner uploads (its paths are the project's); the template names only the
// fixed path, so it stays the same across muster upgrades, and the bake's trigger holds the sha256,
// so a new agent rebakes. Not through writeArtifacts: a 4 MB file gets no diff.
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {atomicWriteSync} from '../lib/atomic-write.js'
import {BUNDLED_TEMPLATES} from './generate.js'
import {AGENT_BUNDLE} from './packer.js'

/** muster's own agent bundle, beside its templates in the package. */
export const AGENT_BUNDLE_SOURCE = join(BUNDLED_TEMPLATES, '..', 'dist', 'muster-agent.mjs')

export interface AgentBundle {
  /** Absolute path of muster's bundle. */
  source: string
  /** Where the bake copies it, relative to the project root (AGENT_BUNDLE). */
  path: string
  sha256: string
}

let cached: {key: string; bundle: AgentBundle} | undefined

/** muster's agent bundle and its sha256 (read once per build of it), or a UserError when muster was not built. */
export function readAgentBundle(source = AGENT_BUNDLE_SOURCE): AgentBundle {
  if (!existsSync(source)) {
    throw new UserError(`muster's agent bundle ${source} is missing, and the bake installs it into the image`, {
      hint: 'Build muster (npm run build in its checkout) or reinstall it; or give the group "packer": {"communicator": "none"} to bake without provisioning. Nothing was baked.',
    })
  }
  const stat = statSync(source)
  const key = `${source}:${stat.size}:${stat.mtimeMs}`
  if (cached?.key !== key) {
    const sha256 = createHash('sha256').update(readFileSync(source)).digest('hex')
    cached = {key, bundle: {source, path: AGENT_BUNDLE, sha256}}
  }
  return cached.bundle
}

/** Copies the bundle into the project (atomically, only when its content differs). */
export function installAgentBundle(root: string, bundle: AgentBundle): void {
  const target = join(root, bundle.path)
  if (existsSync(target) && createHash('sha256').update(readFileSync(target)).digest('hex') === bundle.sha256) return
  const content = readFileSync(bundle.source)
  // The source may have been rebuilt since it was hashed: the bake's check would then fail, late.
  if (createHash('sha256').update(content).digest('hex') !== bundle.sha256) {
    throw new UserError(`muster's agent bundle ${bundle.source} changed while muster ran`, {hint: 'Run the command again. Nothing was baked.'})
  }
  atomicWriteSync(target, content)
}

/**
 * A group with packer: false boots from an image muster never baked, so the agent comes from the
 * release bucket at boot: the bundle, the unit and the converge command, each content-addressed
 * (muster/PROJECT/agent/SHA256.EXT), uploaded by the verb that launches the machines and fetched by
 * the user data with the node's instance profile, checked against the sha256s written in it.
 */
export interface BootAgentFile {
  /** Relative to the bucket. */
  key: string
  sha256: string
  /** Where the upload reads it from (muster's bundle), or its text (the project's templates). */
  source: {path: string} | {text: string}
  /** Its name in the install step's upload directory (as the bake's file provisioners name it). */
  name: 'muster-agent.mjs' | 'muster-agent.service' | 'muster-converge.sh'
}

export interface BootAgent {
  bucket: string
  files: BootAgentFile[]
}

export const agentObjectKey = (project: string, sha256: string, ext: string): string => `muster/${project}/agent/${sha256}.${ext}`

export function bootAgent(bucket: string, project: string, bundle: AgentBundle, texts: {agentUnit: string; convergeScript: string}): BootAgent {
  const text = (name: BootAgentFile['name'], ext: string, content: string): BootAgentFile => {
    const sha256 = createHash('sha256').update(content).digest('hex')
    return {key: agentObjectKey(project, sha256, ext), sha256, source: {text: content}, name}
  }
  return {
    bucket,
    files: [
      {key: agentObjectKey(project, bundle.sha256, 'mjs'), sha256: bundle.sha256, source: {path: bundle.source}, name: 'muster-agent.mjs'},
      text('muster-agent.service', 'service', texts.agentUnit),
      text('muster-converge.sh', 'sh', texts.convergeScript),
    ],
  }
}

/** What the upload needs of the release bucket (src/release/bucket.ts's ReleaseBucket has it; release depends on artifacts, not back). */
export interface AgentBucket {
  exists(key: string): Promise<boolean>
  put(key: string, body: Buffer, contentType: string): Promise<void>
}

/** Uploads what is not in the bucket yet (a key names its bytes, so one there already holds them). */
export async function publishBootAgent(bucket: AgentBucket, agent: BootAgent): Promise<string[]> {
  const uploaded: string[] = []
  for (const file of agent.files) {
    if (await bucket.exists(file.key)) continue
    const body = 'path' in file.source ? readFileSync(file.source.path) : Buffer.from(file.source.text, 'utf8')
    if (createHash('sha256').update(body).digest('hex') !== file.sha256) {
      throw new UserError(`${file.name} changed while muster ran`, {hint: 'Run the command again. Nothing was launched.'})
    }
    await bucket.put(file.key, body, file.name.endsWith('.mjs') ? 'text/javascript' : 'text/plain')
    uploaded.push(`s3://${agent.bucket}/${file.key}`)
  }
  return uploaded
}
