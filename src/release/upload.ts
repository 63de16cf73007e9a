// Uploads a deploy's releases, content-addressed: a key names its bytes' sha256, so an object that
// exists already holds them and is not sent again (an unchanged cookbook set, an unchanged group's
// manifest). The cookbooks go first: a manifest never names a tarball that is not there yet.
import {type ReleaseBucket, s3Url} from './bucket.js'
import {type BuiltManifest, cookbooksKey, manifestKey} from './build.js'
import type {PackedCookbooks} from './pack.js'

export interface UploadedObject {
  url: string
  bytes: number
  /** False when the object was there already (same key, so same bytes). */
  uploaded: boolean
}

export interface UploadResult {
  cookbooks: UploadedObject | null
  manifests: Record<string, UploadedObject>
}

async function putOnce(bucket: ReleaseBucket, key: string, body: Buffer, contentType: string): Promise<UploadedObject> {
  const url = s3Url({bucket: bucket.bucket, key})
  if (await bucket.exists(key, body)) return {url, bytes: body.length, uploaded: false}
  await bucket.put(key, body, contentType)
  return {url, bytes: body.length, uploaded: true}
}

export async function uploadReleases(bucket: ReleaseBucket, project: string, cookbooks: PackedCookbooks | null, manifests: ReadonlyMap<string, BuiltManifest>): Promise<UploadResult> {
  const tarball = cookbooks ? await putOnce(bucket, cookbooksKey(project, cookbooks.sha256), cookbooks.bytes, 'application/gzip') : null
  const uploaded: Record<string, UploadedObject> = {}
  for (const [group, built] of manifests) {
    uploaded[group] = await putOnce(bucket, manifestKey(project, group, built.digest), built.bytes, 'application/json')
  }
  return {cookbooks: tarball, manifests: uploaded}
}
