// A real moto server (the AWS API: EC2, Auto Scaling, S3, STS…) on a free loopback port.
//
// moto quirks the tests (and the CLI code they exercise) must live with:
// - RegisterImage ignores TagSpecifications, BlockDeviceMappings, Architecture and
//   VirtualizationType, and gives the image RootDeviceType "standard". Tag with CreateTags.
// - Packer's amazon-ebs refuses a source AMI whose RootDeviceType is not "ebs", and nothing in
//   moto's API makes such an image. So source images are seeded at start-up via MOTO_AMIS_PATH
//   (see `sourceImages`); they come back after reset() too.
// - Default AMIs are off (MOTO_EC2_LOAD_DEFAULT_AMIS=false, 1,177 images): only seeded images exist.
// - CreateImage (what Packer's amazon-ebs does) also gives RootDeviceType "standard", so an image
//   baked during a test cannot be the source of the next bake (a from_base group built from the
//   __base__ image baked just before). Seeding cannot help (MOTO_AMIS_PATH is read at start-up, and
//   a restart loses every resource); RegisterImage and CopyImage give "standard" too, and moto's API
//   has no call that changes it. So such a bake talks to moto through `startRootDeviceProxy`, a
//   pass-through HTTP proxy (its own process: root-device-proxy.mjs) that rewrites `<rootDeviceType>standard</rootDeviceType>` to `ebs` in
//   moto's answers and changes nothing else: filters, tags, ids and dates are moto's own.
import {CreateTagsCommand, EC2Client, RegisterImageCommand} from '@aws-sdk/client-ec2'
import {existsSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {findTool, integrationRequired, toolsBin} from './integration.js'
import {freePort, httpAnswers, makeTempDir, type ManagedProcess, removeDir, startProcess, waitUntil} from './process.js'

export interface MotoServer {
  /** http://127.0.0.1:PORT */
  endpoint: string
  port: number
  /**
   * Environment for a child process (AWS SDK, AWS CLI, Pulumi, Packer) to talk to this server:
   * AWS_ENDPOINT_URL, dummy credentials, AWS_REGION/AWS_DEFAULT_REGION us-east-1, no IMDS.
   */
  env: Record<string, string>
  /** The account moto answers as (what `Owners: ['self']` means). */
  accountId: string
  region: string
  /** Images present from start-up (and again after every reset()). */
  sourceImages: SourceImage[]
  /** Clears every resource (POST /moto-api/reset); seeded source images come back. */
  reset(): Promise<void>
  stop(): Promise<void>
}

/** An AMI that exists from start-up, usable as a Packer amazon-ebs `source_ami`. */
export interface SourceImage {
  id: string
  name: string
  /** Defaults to a public "amazon"-style owner, so `Owners: ['self']` does not list it. */
  ownerId?: string
  architecture?: 'x86_64' | 'arm64'
  description?: string
}

export const MOTO_ACCOUNT_ID = '123456789012'
export const MOTO_REGION = 'us-east-1'

/** Seeded by default: an Ubuntu-like EBS-backed HVM image, like a real Packer source. */
export const DEFAULT_SOURCE_IMAGE: SourceImage = {
  id: 'ami-0a0b0c0d0e0f01234',
  name: 'ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20260101',
  ownerId: '099720109477',
  architecture: 'x86_64',
  description: 'Ubuntu 24.04 (moto seed)',
}

export interface StartMotoOptions {
  /** Images that exist from start-up. Defaults to [DEFAULT_SOURCE_IMAGE]; [] for none. */
  sourceImages?: SourceImage[]
}

/** Starts moto_server (from scripts/ci/install-moto.sh) on a free port in its own temp dir. */
export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const motoServer = requireToolOrThrow()
  const sourceImages = options.sourceImages ?? [DEFAULT_SOURCE_IMAGE]
  const dir = makeTempDir('moto')
  const amisPath = join(dir, 'amis.json')
  writeFileSync(amisPath, JSON.stringify(sourceImages.map(toMotoAmi), null, 2))

  let proc: ManagedProcess | undefined
  let port = 0
  // A port picked free can be taken before moto binds it; a second pick makes that harmless.
  for (let attempt = 0; attempt < 3; attempt++) {
    port = await freePort()
    proc = startProcess(motoServer, ['-H', '127.0.0.1', '-p', String(port)], {
      cwd: dir,
      env: {
        ...process.env,
        MOTO_EC2_LOAD_DEFAULT_AMIS: 'false',
        MOTO_AMIS_PATH: amisPath,
        // moto answers as this account/region; keep it explicit so tests can rely on it.
        MOTO_ACCOUNT_ID,
        AWS_DEFAULT_REGION: MOTO_REGION,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
      },
    })
    try {
      await waitUntil('moto_server', () => httpAnswers(`http://127.0.0.1:${port}/moto-api/`), {proc, timeoutMs: 60_000})
      break
    } catch (error) {
      await proc.stop()
      proc = undefined
      if (attempt === 2 || !/address already in use/i.test(String(error))) {
        removeDir(dir)
        throw error
      }
    }
  }
  if (proc === undefined) throw new Error('moto_server did not start')
  const started = proc

  const endpoint = `http://127.0.0.1:${port}`
  return {
    endpoint,
    port,
    accountId: MOTO_ACCOUNT_ID,
    region: MOTO_REGION,
    sourceImages,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_SESSION_TOKEN: 'testing',
      AWS_REGION: MOTO_REGION,
      AWS_DEFAULT_REGION: MOTO_REGION,
      // No ~/.aws of the machine may leak in, and nothing may wait on an instance metadata service.
      AWS_CONFIG_FILE: join(dir, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    async reset(): Promise<void> {
      const response = await fetch(`${endpoint}/moto-api/reset`, {method: 'POST'})
      await response.arrayBuffer()
      if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`)
    },
    async stop(): Promise<void> {
      await started.stop()
      removeDir(dir)
    },
  }
}

/** An EC2 client for this server (region and dummy credentials set, no retries to slow a failure). */
export function motoEc2(moto: MotoServer): EC2Client {
  return new EC2Client({
    endpoint: moto.endpoint,
    region: moto.region,
    credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'},
    maxAttempts: 1,
  })
}

/**
 * Registers an image through the API and tags it (RegisterImage drops TagSpecifications in moto).
 * Owned by the moto account. Not usable as a Packer source (RootDeviceType "standard"): seed
 * those with startMoto({sourceImages}).
 */
export async function registerImage(
  moto: MotoServer,
  image: {name: string; description?: string; tags?: Record<string, string>},
): Promise<string> {
  const ec2 = motoEc2(moto)
  try {
    const {ImageId} = await ec2.send(
      new RegisterImageCommand({
        Name: image.name,
        Description: image.description,
        Architecture: 'x86_64',
        VirtualizationType: 'hvm',
        RootDeviceName: '/dev/sda1',
      }),
    )
    if (!ImageId) throw new Error('moto RegisterImage returned no ImageId')
    const tags = Object.entries(image.tags ?? {})
    if (tags.length > 0) {
      await ec2.send(new CreateTagsCommand({Resources: [ImageId], Tags: tags.map(([Key, Value]) => ({Key, Value}))}))
    }
    return ImageId
  } finally {
    ec2.destroy()
  }
}

export interface RootDeviceProxy {
  /** http://127.0.0.1:PORT: give it to Packer as custom_endpoint_ec2. */
  endpoint: string
  /** How many answers had a root device type rewritten (a test can check the proxy was used). */
  rewrites(): Promise<number>
  stop(): Promise<void>
}

/**
 * A pass-through proxy to moto for Packer, so an image baked in the test (RootDeviceType "standard"
 * in moto) can be a bake's source, as EBS-backed images are in EC2. See the comment at the top. It
 * runs as a process of its own (root-device-proxy.mjs): the CLI runs under spawnSync, which blocks
 * the test's own event loop.
 */
export async function startRootDeviceProxy(moto: MotoServer): Promise<RootDeviceProxy> {
  const port = await freePort()
  const proc = startProcess(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'root-device-proxy.mjs'), String(port), String(moto.port)], {env: process.env})
  const endpoint = `http://127.0.0.1:${port}`
  await waitUntil('root-device proxy', () => httpAnswers(`${endpoint}/__rewrites`), {proc, timeoutMs: 15_000})
  return {
    endpoint,
    rewrites: async () => Number(await (await fetch(`${endpoint}/__rewrites`)).text()),
    stop: () => proc.stop(),
  }
}

function toMotoAmi(image: SourceImage): Record<string, unknown> {
  return {
    ami_id: image.id,
    name: image.name,
    description: image.description ?? image.name,
    owner_id: image.ownerId ?? '137112412989',
    public: true,
    state: 'available',
    architecture: image.architecture ?? 'x86_64',
    virtualization_type: 'hvm',
    root_device_type: 'ebs',
    root_device_name: '/dev/sda1',
    image_type: 'machine',
    hypervisor: 'xen',
    sriov: 'simple',
    image_location: `${image.ownerId ?? 'amazon'}/${image.name}`,
  }
}

function requireToolOrThrow(): string {
  const install = 'bash scripts/ci/install-moto.sh'
  const pinned = join(toolsBin, 'moto_server')
  if (existsSync(pinned)) return pinned
  // Suites call requireTool() in `before` to skip cleanly; reaching here without it is a setup bug.
  const found = findTool('moto_server')
  if (!found) throw new Error(`moto_server not found (install it with: ${install})`)
  // The machine's Python may carry its own (other) moto: fine for a local run, never for CI.
  if (integrationRequired) throw new Error(`MUSTER_REQUIRE_INTEGRATION=1 but only an unpinned moto_server was found (${found}); run ${install}`)
  console.error(`    warning: using unpinned ${found}; the pinned one comes from ${install}`)
  return found
}
