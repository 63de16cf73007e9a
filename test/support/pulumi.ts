// A throwaway Pulumi environment for integration tests: the CLI built by
// scripts/ci/install-pulumi.sh, a state backend (a file:// dir by default, or any URL such as
// s3:// on moto), PULUMI_HOME and workspaces in one temp dir that cleanup() removes.
// Nothing here may reach the network: update checks and plugin downloads are switched off, so a
// missing plugin fails fast instead of hanging on a download.
import {mkdtempSync, rmSync} from 'node:fs'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  LocalWorkspace,
  PulumiCommand,
  type PulumiFn,
  type Stack,
} from '@pulumi/pulumi/automation/index.js'

import {pathWithTools, toolsDir} from './integration.js'

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const nodeModules = join(repoRoot, 'node_modules')

/**
 * The npm package ships the launcher of Pulumi's dynamic-provider host
 * (`pulumi-resource-pulumi-nodejs`); the engine looks for it on PATH, and the launcher
 * require.resolve()s the SDK from its cwd, which is a temp dir, hence NODE_PATH.
 */
const dynamicProviderDir = join(nodeModules, '@pulumi', 'pulumi')

export const PULUMI_PASSPHRASE = 'muster-integration-tests'

export interface PulumiSandboxOptions {
  /** State backend; defaults to a file:// dir inside the sandbox. */
  backendUrl?: string
  /** Extra variables for every pulumi process (e.g. AWS_* for an s3:// backend). */
  env?: Record<string, string>
}

export interface StackOptions {
  stackName: string
  program: PulumiFn
  projectName?: string
}

export interface PulumiSandbox {
  /** Root temp dir; everything below it goes away in cleanup(). */
  dir: string
  backendUrl: string
  /** The environment every pulumi process gets (on top of process.env). */
  env: Record<string, string>
  command: PulumiCommand
  /** Creates the stack, or selects it if it exists, in a new workspace dir of its own. */
  stack(opts: StackOptions): Promise<Stack>
  /** Removes the temp dir. Safe to call twice; also runs at process exit as a safety net. */
  cleanup(): Promise<void>
}

const liveDirs = new Set<string>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // An aborted mocha run skips after() hooks; the state and PULUMI_HOME dirs must not pile up in /tmp.
  process.on('exit', () => {
    for (const dir of liveDirs) rmSync(dir, {force: true, recursive: true})
  })
}

export function pulumiEnv(dir: string, backendUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PULUMI_HOME: join(dir, 'home'),
    PULUMI_BACKEND_URL: backendUrl,
    PULUMI_CONFIG_PASSPHRASE: PULUMI_PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    PATH: [pathWithTools(), dynamicProviderDir].join(delimiter),
    NODE_PATH: [nodeModules, process.env.NODE_PATH ?? ''].filter(Boolean).join(delimiter),
    ...extra,
  }
}

export async function createPulumiSandbox(opts: PulumiSandboxOptions = {}): Promise<PulumiSandbox> {
  installExitHook()
  const dir = mkdtempSync(join(tmpdir(), 'muster-pulumi-'))
  liveDirs.add(dir)
  try {
    await mkdir(join(dir, 'home'))
    await mkdir(join(dir, 'state'))
    await mkdir(join(dir, 'work'))
    const backendUrl = opts.backendUrl ?? `file://${join(dir, 'state')}`
    const env = pulumiEnv(dir, backendUrl, opts.env)
    // root is the install root; PulumiCommand runs <root>/bin/pulumi and puts that dir first on PATH,
    // which is also where the command provider plugin sits.
    const command = await PulumiCommand.get({root: toolsDir})

    let cleaned = false
    return {
      dir,
      backendUrl,
      env,
      command,
      async stack({stackName, program, projectName = 'muster-test'}: StackOptions): Promise<Stack> {
        // A dir per call, so two workspaces on one stack behave like two separate processes.
        const workDir = await mkdtemp(join(dir, 'work', `${projectName}-${stackName}-`))
        return LocalWorkspace.createOrSelectStack(
          {stackName, projectName, program},
          {
            workDir,
            pulumiHome: env.PULUMI_HOME,
            pulumiCommand: command,
            envVars: env,
            secretsProvider: 'passphrase',
            projectSettings: {name: projectName, runtime: 'nodejs', backend: {url: backendUrl}},
          },
        )
      },
      async cleanup(): Promise<void> {
        if (cleaned) return
        cleaned = true
        await rm(dir, {force: true, recursive: true})
        liveDirs.delete(dir)
      },
    }
  } catch (error) {
    rmSync(dir, {force: true, recursive: true})
    liveDirs.delete(dir)
    throw error
  }
}
