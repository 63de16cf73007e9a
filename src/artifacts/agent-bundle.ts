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
