// An image a bake finished although its stack never recorded it: muster was killed (kill -9, a
// lost session) while Packer went on to create the AMI. The next bake of the same inputs finds it
// by its tags — the group, the project, the template's hash and the cookbooks' hash, which together
// say what the image was baked from — and adopts it instead of baking a duplicate.
import {ownerTags, TAG_COOKBOOKS_HASH, TAG_ENVIRONMENT, TAG_GROUP, TAG_TEMPLATE_HASH} from '../lib/tags.js'
import type {GroupImage, ImageStore} from './ec2.js'

export interface BakeInputs {
  group: string
  project: string
  /** The environment the bake is for (its images carry muster:environment); undefined without environments. */
  environment?: string | undefined
  templateHash: string
  cookbooksHash: string
}

/** The tags an image baked from these inputs carries. */
export function bakeTags(inputs: BakeInputs): Record<string, string> {
  return {[TAG_GROUP]: inputs.group, ...ownerTags(inputs), [TAG_TEMPLATE_HASH]: inputs.templateHash, [TAG_COOKBOOKS_HASH]: inputs.cookbooksHash}
}

/** The newest available image baked from exactly these inputs, if any. */
export async function findBakedImage(store: Pick<ImageStore, 'listGroupImages'>, inputs: BakeInputs): Promise<GroupImage | undefined> {
  // An empty hash (a template built by hand without its -var) says nothing about the cookbooks.
  if (inputs.templateHash === '' || inputs.cookbooksHash === '') return undefined
  const wanted = Object.entries(bakeTags(inputs))
  const matching = (await store.listGroupImages(inputs.group)).filter(
    // Without environments, an environment's image (same hashes) is not this project's to adopt.
    (image) => image.state === 'available' && wanted.every(([key, value]) => image.tags[key] === value) && (inputs.environment !== undefined || image.tags[TAG_ENVIRONMENT] === undefined),
  )
  return matching.sort((a, b) => b.created.localeCompare(a.created))[0]
}
