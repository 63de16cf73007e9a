// Packer (built from its Go module by scripts/ci/install-packer.sh, with the amazon plugin in
// $MUSTER_TOOLS/packer/plugins) run against moto, fully offline.
//
// What makes `packer build` of an amazon-ebs source work against moto:
// - the source options in `motoSourceOptions()` (custom_endpoint_ec2 because the plugin's AWS SDK
//   ignores AWS_ENDPOINT_URL; skip_* so it never calls STS, IMDS or the regions list;
//   communicator "none" because moto's instances run nothing; fast aws_polling because moto is
//   instant and the default waiter delay is 15 s; skip_ami_run_tags, see below);
// - a source AMI with RootDeviceType "ebs", which only a seeded moto image has (see moto.ts);
// - PACKER_PLUGIN_PATH pointing at the installed plugin, so `required_plugins` is satisfied
//   without `packer init` (which would go to the network).
import {execFile} from 'node:child_process'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'

import {findTool, pathWithTools, toolsDir} from './integration.js'
import type {MotoServer} from './moto.js'
import {makeTempDir, removeDir} from './process.js'

/** Where install-packer.sh installs the amazon plugin (PACKER_PLUGIN_PATH layout). */
export const packerPluginPath = join(toolsDir, 'packer', 'plugins')

export function findPacker(): string {
  const found = findTool('packer')
  if (!found) throw new Error('packer not found (install it with: bash scripts/ci/install-packer.sh)')
  return found
}

export interface PackerSandbox {
  /** Temp dir: HOME, cache and config live here; use it (or a subdir) as the build's cwd. */
  dir: string
  /** Environment for running packer: offline, isolated from the machine's HOME, pointed at moto if given. */
  env: Record<string, string>
  cleanup(): void
}

export function packerSandbox(moto?: MotoServer): PackerSandbox {
  const dir = makeTempDir('packer')
  const home = join(dir, 'home')
  mkdirSync(home)
  const env: Record<string, string> = {
    PATH: pathWithTools(),
    HOME: home,
    PACKER_CONFIG_DIR: join(home, '.config', 'packer'),
    PACKER_CACHE_DIR: join(dir, 'packer_cache'),
    PACKER_PLUGIN_PATH: packerPluginPath,
    // No version check-in nor HCP registry calls: nothing may try the network.
    CHECKPOINT_DISABLE: '1',
    HCP_PACKER_REGISTRY: 'off',
    PACKER_NO_COLOR: '1',
    TMPDIR: dir,
    ...(moto?.env ?? {}),
    // The plugin's waiters honour these over the template's defaults.
    AWS_POLL_DELAY_SECONDS: '1',
    AWS_MAX_ATTEMPTS: '60',
  }
  return {dir, env, cleanup: () => removeDir(dir)}
}

/** amazon-ebs source options that make a build run against moto (merge into the source block). */
export function motoSourceOptions(moto: MotoServer): Record<string, unknown> {
  // No region: muster owns it (the group's region, which is moto's us-east-1 in these tests).
  return {
    custom_endpoint_ec2: moto.endpoint,
    access_key: 'testing',
    secret_key: 'testing',
    skip_credential_validation: true,
    skip_region_validation: true,
    skip_metadata_api_check: true,
    communicator: 'none',
    // The plugin otherwise passes run_tags as TagSpecifications for the image AND its snapshot to
    // CreateImage, and moto answers a snapshot TagSpecification with HTTP 500 (NotImplemented).
    // The AMI's own `tags` are still applied afterwards with CreateTags.
    skip_ami_run_tags: true,
    aws_polling: {delay_seconds: 1, max_attempts: 60},
  }
}

export interface PackerRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs packer with `args` in `cwd`; never throws on a non-zero exit (the caller asserts). */
export function runPacker(args: string[], options: {cwd: string; env: Record<string, string>; timeoutMs?: number}): Promise<PackerRun> {
  return new Promise((resolve) => {
    execFile(
      findPacker(),
      args,
      {cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 180_000, maxBuffer: 32 * 1024 * 1024},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({code, stdout, stderr})
      },
    )
  })
}
