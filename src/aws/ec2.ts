// The EC2 side of AMI retention: what the group's images are and what still uses any of them.
// Retention receives an ImageStore, so it is testable with a plain object; the real store talks
// to EC2 and Auto Scaling in the group's region, with the endpoint (AWS_ENDPOINT_URL) and the
// credentials from the environment, exactly as the AWS CLI and Packer would find them.
import {AutoScalingClient} from '@aws-sdk/client-auto-scaling'
import {CreateTagsCommand, DeleteSnapshotCommand, DeregisterImageCommand, EC2Client, type Image, paginateDescribeImages} from '@aws-sdk/client-ec2'

import {TAG_GROUP} from '../lib/tags.js'
import {aws, isAwsError} from './errors.js'
import {type ImagesInUse, imagesInUse} from './images-in-use.js'

/** One AMI of a group, as retention sees it. */
export interface GroupImage {
  id: string
  name: string
  /** ISO 8601, as EC2 reports it; '' when EC2 gave none (such an image sorts oldest). */
  created: string
  snapshotIds: string[]
  /** EC2's image state: available, pending, failed, disabled, … */
  state: string
  /** The image's tags (muster:project says whose it is: see ownershipOf in lib/tags.ts). */
  tags: Record<string, string>
}

export interface ImageStore {
  /**
   * This account's images tagged muster:group=GROUP (deregistered ones left out), whatever their
   * project: the caller sorts ours from legacy and other projects' images (EC2 cannot filter on a
   * tag's absence).
   */
  listGroupImages(group: string): Promise<GroupImage[]>
  /**
   * Images used by any launch template version, any Auto Scaling group (launch configuration,
   * launch template or mixed-instances policy) or any instance that is not terminated.
   * With `imageIds`, only those images are looked for (and [] asks nothing of AWS).
   */
  imagesInUse(imageIds?: readonly string[]): Promise<ImagesInUse>
  /** Deregisters an image; one that is already gone is not an error. */
  deregisterImage(imageId: string): Promise<void>
  /** Deletes a snapshot; one that is already gone is not an error. */
  deleteSnapshot(snapshotId: string): Promise<void>
  /** Adds (or overwrites) tags on images. */
  tagImages(imageIds: readonly string[], tags: Readonly<Record<string, string>>): Promise<void>
}

export interface AwsStoreOptions {
  region: string
  /** Waits between retries of a snapshot that is still in use right after its image went; tests shorten it. */
  snapshotRetryDelaysMs?: readonly number[]
}

/** The clients of one region, shared by the store's calls. */
interface RegionClients {
  ec2: EC2Client
  autoscaling: AutoScalingClient
  region: string
}

/** An ImageStore over the AWS SDK; call close() when done so its sockets do not hold the process. */
export function createImageStore(options: AwsStoreOptions): ImageStore & {close(): void} {
  const clients: RegionClients = {ec2: new EC2Client({region: options.region}), autoscaling: new AutoScalingClient({region: options.region}), region: options.region}
  // EC2 can still see a snapshot as used for a few seconds after its image is deregistered.
  const snapshotRetryDelaysMs = options.snapshotRetryDelaysMs ?? [1000, 2000, 4000, 8000]
  return {
    listGroupImages: (group) => listGroupImages(clients, group),
    imagesInUse: (imageIds) => imagesInUse(clients.ec2, clients.autoscaling, clients.region, imageIds),
    deregisterImage: (imageId) => deregisterImage(clients, imageId),
    deleteSnapshot: (snapshotId) => deleteSnapshot(clients, snapshotId, snapshotRetryDelaysMs),
    tagImages: (imageIds, tags) => tagImages(clients, imageIds, tags),
    close() {
      clients.ec2.destroy()
      clients.autoscaling.destroy()
    },
  }
}

async function listGroupImages({ec2, region}: RegionClients, group: string): Promise<GroupImage[]> {
  return aws(`listing the images of group ${group} in ${region}`, async () => {
    const images: GroupImage[] = []
    const pages = paginateDescribeImages({client: ec2, pageSize: 1000}, {Owners: ['self'], Filters: [{Name: `tag:${TAG_GROUP}`, Values: [group]}]})
    for await (const page of pages) {
      for (const image of page.Images ?? []) {
        if (!image.ImageId || image.State === 'deregistered') continue
        images.push(toGroupImage(image))
      }
    }
    return images
  })
}

async function deregisterImage({ec2, region}: RegionClients, imageId: string): Promise<void> {
  await aws(`deregistering ${imageId} in ${region}`, async () => {
    try {
      await ec2.send(new DeregisterImageCommand({ImageId: imageId}))
    } catch (error) {
      if (isAwsError(error, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable')) return
      throw error
    }
  })
}

async function deleteSnapshot({ec2, region}: RegionClients, snapshotId: string, retryDelaysMs: readonly number[]): Promise<void> {
  await aws(`deleting snapshot ${snapshotId} in ${region}`, async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        await ec2.send(new DeleteSnapshotCommand({SnapshotId: snapshotId}))
        return
      } catch (error) {
        if (isAwsError(error, 'InvalidSnapshot.NotFound')) return
        const delay = retryDelaysMs[attempt]
        if (!isAwsError(error, 'InvalidSnapshot.InUse') || delay === undefined) throw error
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  })
}

async function tagImages({ec2, region}: RegionClients, imageIds: readonly string[], tags: Readonly<Record<string, string>>): Promise<void> {
  if (imageIds.length === 0) return
  await aws(`tagging ${imageIds.join(', ')} in ${region}`, async () => {
    await ec2.send(new CreateTagsCommand({Resources: [...imageIds], Tags: Object.entries(tags).map(([Key, Value]) => ({Key, Value}))}))
  })
}

function toGroupImage(image: Image): GroupImage {
  return {
    id: image.ImageId ?? '',
    name: image.Name ?? '',
    created: image.CreationDate ?? '',
    snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
    state: image.State ?? 'unknown',
    tags: Object.fromEntries((image.Tags ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']]))),
  }
}
