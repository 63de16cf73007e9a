// A throwaway muster project wired to the real components: the built CLI, the Pulumi CLI and the
// command provider from the tools dir, Packer against moto, the embedded state backend.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {makeTempDir, removeDir, runMuster, type CliResult} from './cli.js'
import {requireTool} from './integration.js'
import {DEFAULT_SOURCE_IMAGE, startMoto, type MotoServer} from './moto.js'
import {packerSandbox, type PackerSandbox} from './packer.js'

export interface MusterProject {
  dir: string
  env: Record<string, string>
  packer: PackerSandbox
  muster(...args: string[]): CliResult
  writeCookbook(content: string): void
  cleanup(): void
}

/** Packer source options that bake against moto; credentials come from the environment only. */
export function motoPackerOptions(moto: MotoServer): Record<string, unknown> {
  return {
    communicator: 'none',
    custom_endpoint_ec2: moto.endpoint,
    skip_credential_validation: true,
    skip_region_validation: true,
    skip_metadata_api_check: true,
    // moto answers CreateImage with a snapshot tag specification with HTTP 500.
    skip_ami_run_tags: true,
    aws_polling: {delay_seconds: 1, max_attempts: 60},
  }
}

export function createMusterProject(moto: MotoServer, groups: Record<string, Record<string, unknown>>): MusterProject {
  const packer = packerSandbox(moto)
  const dir = makeTempDir('muster-project-')
  const writeCookbook = (content: string): void => {
    mkdirSync(join(dir, 'cookbooks', 'web', 'recipes'), {recursive: true})
    writeFileSync(join(dir, 'cookbooks', 'web', 'recipes', 'default.rb'), content)
  }
  writeCookbook('package "nginx"\n')
  writeFileSync(
    join(dir, 'nodes.json'),
    JSON.stringify({
      __base__: {region: 'us-east-1', instance_type: 't3.micro', source_ami: DEFAULT_SOURCE_IMAGE.id, packer: motoPackerOptions(moto), run_list: ['recipe[web]']},
      ...groups,
    }),
  )
  const env: Record<string, string> = {
    ...packer.env,
    PULUMI_HOME: join(dir, '.pulumi-home'),
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    // The embedded backend, whatever the machine's environment says.
    PULUMI_BACKEND_URL: '',
    PULUMI_CONFIG_PASSPHRASE: '',
  }
  delete env.PULUMI_CONFIG_PASSPHRASE
  return {
    dir,
    env,
    packer,
    muster: (...args) => runMuster(args, {cwd: dir, env}),
    writeCookbook,
    cleanup: () => {
      removeDir(dir)
      packer.cleanup()
    },
  }
}

/**
 * For a suite's `before` hook: requires the Pulumi CLI, Packer and moto (skip, or fail under
 * MUSTER_REQUIRE_INTEGRATION=1), starts moto and makes a project with these groups.
 */
export async function startStackProject(ctx: Mocha.Context, groups: Record<string, Record<string, unknown>>): Promise<{moto: MotoServer; project: MusterProject}> {
  requireTool(ctx, 'pulumi', 'scripts/ci/install-pulumi.sh')
  requireTool(ctx, 'packer', 'scripts/ci/install-packer.sh')
  requireTool(ctx, 'moto_server', 'scripts/ci/install-moto.sh')
  const moto = await startMoto()
  return {moto, project: createMusterProject(moto, groups)}
}
