// packer:promote's AWS side: the image another environment runs, read in its region, and its copy in
// this environment's region when the two differ (EC2 CopyImage, tags included).
//
// A copy is never lost track of: CopyImage gets a client token derived from the source image and
// region (EC2 returns the same copy for a repeated request) and is tagged with where it came from
// in the same call (muster:source-image, muster:source-region), and those tags are written again
// right after. A promote killed midway finds that copy by its tags the next time and reuses it
// (waiting for it if it is still pending) instead of copying again.
import {CopyImageCommand, CreateTagsCommand, DescribeImagesCommand, EC2Client, type Image, type Tag} from '@aws-sdk/client-ec2'

import {InterruptedError, UserError} from '../errors.js'
import {TAG_SOURCE_IMAGE, TAG_SOURCE_REGION} from '../lib/tags.js'
import {aws, isAwsError} from './errors.js'

export interface RegionImage {
  id: string
  name: string
  description: string
  /** EC2's image state: available, pending, failed, … */
  state: string
  tags: Record<string, string>
}

/** One region's image calls, behind an interface so the promote's logic is testable. */
export interface ImageCopyStore {
  readonly region: string
  /** The image, or undefined when this region has no such image (or it is deregistered). */
  describe(imageId: string): Promise<RegionImage | undefined>
  /** Copies of `source` in this region (by their muster:source-* tags), failed ones left out. */
  findCopies(source: {id: string; region: string}): Promise<RegionImage[]>
  /**
   * Starts a copy of the source image into this region, tagged; returns the copy's id. `after`: the
   * id of a copy that failed, to get a new one (see startCopy); EC2 answers the same token with the
   * same copy.
   */
  copy(source: {id: string; region: string; name: string; description: string}, tags: Readonly<Record<string, string>>, after?: string): Promise<string>
  /** EC2's state of an image ('deregistered' included), undefined when EC2 does not know it (yet). */
  stateOf(imageId: string): Promise<string | undefined>
  close(): void
}

const UNUSABLE = new Set(['failed', 'error', 'invalid', 'deregistered'])

/** The tags a copy gets: the source's own (EC2 reserves aws: keys), then where it came from. */
export function copyTags(source: RegionImage, sourceRegion: string): Record<string, string> {
  const own = Object.fromEntries(Object.entries(source.tags).filter(([key]) => !/^aws:/i.test(key)))
  return {...own, [TAG_SOURCE_IMAGE]: source.id, [TAG_SOURCE_REGION]: sourceRegion}
}

/**
 * CopyImage's idempotency token (at most 64 ASCII characters): one per source image and region, and
 * one per failed copy to replace (`after`), so a retry is as idempotent as the first try.
 */
export const copyToken = (source: {id: string; region: string}, after?: string): string =>
  (after === undefined ? `muster-promote-${source.id}-${source.region}` : `muster-promote-${source.id}-after-${after}`).slice(0, 64)

/** How many failed copies in a row startCopy replaces before it gives up. */
export const MAX_COPY_TRIES = 4

/**
 * The copy of `source` in the store's region: one found by its tags, else a new one. EC2 answers a
 * repeated token with the same copy for a long while, even when that copy failed or was deregistered
 * (after a failed copy, the hint says to deregister it): such a copy is replaced, with a token derived
 * from its id, so a promote killed during the retry makes the same request again and finds the same
 * copy. A copy EC2 does not list yet (it lists new images a moment later) is never replaced.
 */
export async function startCopy(store: ImageCopyStore, source: {id: string; region: string; name: string; description: string}, tags: Readonly<Record<string, string>>): Promise<string> {
  const found = (await store.findCopies(source))[0]
  if (found) return found.id
  let copy = await store.copy(source, tags)
  for (let tries = 1; tries < MAX_COPY_TRIES; tries++) {
    const state = await store.stateOf(copy)
    if (state === undefined || !UNUSABLE.has(state)) return copy
    copy = await store.copy(source, tags, copy)
  }
  const state = await store.stateOf(copy)
  if (state !== undefined && UNUSABLE.has(state)) {
    throw new UserError(`copying ${source.id} to ${store.region} failed ${MAX_COPY_TRIES} times (the last copy, ${copy}, is ${state})`, {
      hint: 'Look at the source image (its snapshots, encryption keys and whether this account may copy it to the region), then run packer:promote again.',
    })
  }
  return copy
}

export function createImageCopyStore(region: string): ImageCopyStore {
  const ec2 = new EC2Client({region})
  const toImage = (image: Image): RegionImage => ({
    id: image.ImageId ?? '',
    name: image.Name ?? '',
    description: image.Description ?? '',
    state: image.State ?? 'unknown',
    tags: Object.fromEntries((image.Tags ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']]))),
  })
  const toTags = (tags: Readonly<Record<string, string>>): Tag[] => Object.entries(tags).map(([Key, Value]) => ({Key, Value}))
  /** EC2's record of one image (deregistered ones included while EC2 lists them), undefined when it knows none. */
  const readImage = (imageId: string): Promise<Image | undefined> =>
    aws(`reading image ${imageId} in ${region}`, async () => {
      try {
        const out = await ec2.send(new DescribeImagesCommand({ImageIds: [imageId]}))
        return out.Images?.find((i) => i.ImageId === imageId)
      } catch (error) {
        if (isAwsError(error, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable', 'InvalidAMIID.Malformed')) return undefined
        throw error
      }
    })
  return {
    region,
    async describe(imageId) {
      const image = await readImage(imageId)
      return image && image.State !== 'deregistered' ? toImage(image) : undefined
    },
    async findCopies(source) {
      return aws(`looking for copies of ${source.id} in ${region}`, async () => {
        const out = await ec2.send(
          new DescribeImagesCommand({
            Owners: ['self'],
            Filters: [
              {Name: `tag:${TAG_SOURCE_IMAGE}`, Values: [source.id]},
              {Name: `tag:${TAG_SOURCE_REGION}`, Values: [source.region]},
            ],
          }),
        )
        // The filter is trusted for speed and checked here for exactness.
        return (out.Images ?? [])
          .map(toImage)
          .filter((i) => i.tags[TAG_SOURCE_IMAGE] === source.id && i.tags[TAG_SOURCE_REGION] === source.region && !UNUSABLE.has(i.state))
      })
    },
    async stateOf(imageId) {
      return (await readImage(imageId))?.State
    },
    async copy(source, tags, after) {
      return aws(`copying ${source.id} from ${source.region} to ${region}`, async () => {
        const out = await ec2.send(
          new CopyImageCommand({
            SourceImageId: source.id,
            SourceRegion: source.region,
            Name: source.name,
            Description: source.description,
            ClientToken: copyToken(source, after),
            TagSpecifications: [{ResourceType: 'image', Tags: toTags(tags)}],
          }),
        )
        if (!out.ImageId) throw new Error(`CopyImage of ${source.id} returned no image id`)
        // Again, in case the API took the copy but not its tags: the tags are how it is found again.
        await ec2.send(new CreateTagsCommand({Resources: [out.ImageId], Tags: toTags(tags)}))
        return out.ImageId
      })
    },
    close() {
      ec2.destroy()
    },
  }
}

export interface WaitOptions {
  /** Give up after this long (default 30 minutes: a large image takes a while to copy). */
  timeoutMs?: number
  /** Between looks (default 15 s). */
  intervalMs?: number
  progress?: (line: string) => void
  /** Ctrl-C: stop waiting at once (the copy goes on in AWS; the next promote finds it by its tags). */
  signal?: AbortSignal | undefined
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  now?: () => number
}

/** A sleep that a Ctrl-C ends early: waiting up to 30 minutes must not make the first Ctrl-C do nothing. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, {once: true})
  })
}

/** Waits until the image is available: bounded, with a progress line per look. */
export async function waitAvailable(store: Pick<ImageCopyStore, 'describe' | 'region'>, imageId: string, options: WaitOptions = {}): Promise<RegionImage> {
  const timeoutMs = options.timeoutMs ?? 30 * 60_000
  const intervalMs = options.intervalMs ?? 15_000
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? abortableSleep
  const started = now()
  const interrupted = (): InterruptedError =>
    new InterruptedError(`interrupted (Ctrl-C) while waiting for the copy ${imageId} in ${store.region}; nothing was pinned`, {
      hint: 'The copy goes on in AWS. Run the same packer:promote again: it finds this copy by its tags and reuses it instead of copying again.',
    })
  for (;;) {
    if (options.signal?.aborted) throw interrupted()
    const image = await store.describe(imageId)
    if (image?.state === 'available') return image
    if (image === undefined || UNUSABLE.has(image.state)) {
      throw new UserError(`the copy ${imageId} in ${store.region} ${image === undefined ? 'is gone' : `is ${image.state}`}`, {
        hint: 'Deregister it if it is still listed, then run packer:promote again: it makes a new copy.',
      })
    }
    const waited = now() - started
    if (waited >= timeoutMs) {
      throw new UserError(`the copy ${imageId} in ${store.region} is still ${image.state} after ${Math.round(waited / 1000)} s`, {
        hint: 'Run the same packer:promote again later: it finds this copy by its tags and waits for it instead of copying again.',
      })
    }
    options.progress?.(`${imageId} in ${store.region}: ${image.state} (${Math.round(waited / 1000)} s)…`)
    await sleep(intervalMs, options.signal)
    if (options.signal?.aborted) throw interrupted()
  }
}
