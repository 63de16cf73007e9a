// The release bucket: where instance:deploy puts releases and where agents fetch them. A small
// interface over S3 so the CLI side (upload) and the node side (download) share one client set-up,
// and tests of their logic can hold the bytes in memory. Credentials are the SDK's default chain:
// the operator's on the CLI, the instance profile on a node (the environment in tests). The
// endpoint follows AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (moto in tests).
import {createHash} from 'node:crypto'

import {GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException} from '@aws-sdk/client-s3'

import {UserError} from '../errors.js'

export interface S3Location {
  bucket: string
  key: string
}

export interface ReleaseBucket {
  readonly bucket: string
  /**
   * The object's bytes; a UserError naming the url when it is missing or unreadable, or larger
   * than maxBytes (checked on the announced length and again while reading, so an object bigger
   * than a node should ever hold is never read into memory whole).
   */
  get(key: string, maxBytes?: number): Promise<Buffer>
  /**
   * Whether the key exists (content-addressed keys are never uploaded twice). Given the bytes it
   * should hold, also whether it holds them: an object changed in the bucket (tampered with, or
   * cut short) is then reported absent, so the upload repairs it instead of every node refusing it.
   */
  exists(key: string, body?: Buffer): Promise<boolean>
  put(key: string, body: Buffer, contentType: string): Promise<void>
}

/** S3 bucket names: 3–63 of a–z 0–9 . -, starting and ending with a letter or digit. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export function checkBucketName(name: string, source: string): string {
  if (!BUCKET.test(name)) {
    throw new UserError(`${source} ${JSON.stringify(name)} is not an S3 bucket name`, {
      hint: 'Give the release bucket\'s name only (3–63 of a–z 0–9 . -), without s3:// or a path.',
    })
  }
  return name
}

export function s3Url(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`
}

export function parseS3Url(url: string): S3Location | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url)
  if (!match || !BUCKET.test(match[1] as string)) return undefined
  return {bucket: match[1] as string, key: match[2] as string}
}

export interface BucketOptions {
  bucket: string
  region?: string
  env?: NodeJS.ProcessEnv
}

export function openReleaseBucket(options: BucketOptions): ReleaseBucket {
  const env = options.env ?? process.env
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL
  const client = new S3Client({
    region: options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // A custom endpoint (moto, MinIO) rarely resolves BUCKET.host names: address buckets by path there.
    ...(endpoint ? {endpoint, forcePathStyle: true} : {}),
  })
  const bucket = options.bucket
  const describe = (key: string, error: unknown): UserError => {
    const name = error instanceof S3ServiceException ? error.name : (error as Error).name
    const message = (error as Error).message
    const url = s3Url({bucket, key})
    if (name === 'NoSuchKey' || name === 'NotFound') return new UserError(`${url} does not exist`, {hint: 'Check the release bucket setting; the release may have been deleted from the bucket.'})
    if (name === 'NoSuchBucket') return new UserError(`the release bucket ${bucket} does not exist`, {hint: 'Create it, or give --bucket / MUSTER_RELEASE_BUCKET the right name.'})
    if (name === 'AccessDenied' || name === 'Forbidden') return new UserError(`access to ${url} was denied`, {hint: 'Check the credentials in use (on a node: its instance profile) allow s3:GetObject and s3:PutObject on the bucket.'})
    return new UserError(`cannot reach the release bucket for ${url}: ${message}`, {hint: endpoint ? `The S3 endpoint is ${endpoint}: check that it answers.` : 'Check the network and the AWS credentials, then run the command again.'})
  }
  return {
    bucket,
    async get(key, maxBytes) {
      try {
        const out = await client.send(new GetObjectCommand({Bucket: bucket, Key: key}))
        if (!out.Body) throw new UserError(`${s3Url({bucket, key})} has no body`)
        if (maxBytes === undefined) return Buffer.from(await out.Body.transformToByteArray())
        const tooLarge = (): UserError => new UserError(`${s3Url({bucket, key})} is larger than ${maxBytes} bytes`, {hint: 'A release this large is refused; check what was uploaded.'})
        if ((out.ContentLength ?? 0) > maxBytes) {
          ;(out.Body as {destroy?: () => void}).destroy?.()
          throw tooLarge()
        }
        const chunks: Buffer[] = []
        let total = 0
        for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
          total += chunk.length
          if (total > maxBytes) {
            ;(out.Body as {destroy?: () => void}).destroy?.()
            throw tooLarge()
          }
          chunks.push(Buffer.from(chunk))
        }
        return Buffer.concat(chunks)
      } catch (error) {
        throw error instanceof UserError ? error : describe(key, error)
      }
    },
    async exists(key, body) {
      try {
        const head = await client.send(new HeadObjectCommand({Bucket: bucket, Key: key}))
        if (body === undefined) return true
        // A single-part PUT's ETag is the MD5 of its bytes (a multipart one has a "-": not ours).
        const etag = (head.ETag ?? '').replace(/"/g, '')
        return head.ContentLength === body.length && etag === createHash('md5').update(body).digest('hex')
      } catch (error) {
        const status = (error as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode
        if (status === 404 && (error as Error).name !== 'NoSuchBucket') return false
        throw describe(key, error)
      }
    },
    async put(key, body, contentType) {
      try {
        await client.send(new PutObjectCommand({Bucket: bucket, Key: key, Body: body, ContentType: contentType}))
      } catch (error) {
        throw describe(key, error)
      }
    },
  }
}
