// Tag keys, resource-name rules and the instance metadata options muster puts on what it makes in
// AWS, in one place: the Packer template, the stack's parts and the AWS look-ups agree by reading
// them here. Plain values: nothing here loads Pulumi or an AWS SDK.

/** The group of an AMI, a launch template or a machine: muster:group=GROUP. */
export const TAG_GROUP = 'muster:group'
/** The paper's tag on a group's ASG and its instances: group=GROUP. */
export const TAG_GROUP_PLAIN = 'group'
/** The hash of the Packer template an AMI was baked from. */
export const TAG_TEMPLATE_HASH = 'muster:template-hash'
/** The hash of the cookbooks a group's run list uses (with their dependencies) when its AMI was baked. */
export const TAG_COOKBOOKS_HASH = 'muster:cookbooks-hash'
/**
 * The project that baked an AMI: the Pulumi project name. Two projects (teams, backends) may have
 * a group of the same name in one account; retention, packer:delete and from_base only ever look at
 * images whose project tag is their own.
 */
export const TAG_PROJECT = 'muster:project'

/**
 * The environment (nodes file `__environments__`) an image, launch template, ASG or machine was
 * made for. Absent on everything of a project without environments, so one environment's images
 * are never another's, nor a no-environment project's.
 */
export const TAG_ENVIRONMENT = 'muster:environment'
/** On a copy of an image made by packer:promote in another region: the image it copies and its region. */
export const TAG_SOURCE_IMAGE = 'muster:source-image'
export const TAG_SOURCE_REGION = 'muster:source-region'

/**
 * Who owns an image: its project and, in a nodes file with environments, its environment.
 * Retention, packer:delete, packer:adopt and from_base all match images through these tags.
 */
export interface ImageOwner {
  project: string
  /** Undefined: a project without environments (its images carry no environment tag). */
  environment?: string | undefined
}

/** The tags that say an image is `owner`'s. */
export function ownerTags(owner: ImageOwner): Record<string, string> {
  return {[TAG_PROJECT]: owner.project, ...(owner.environment === undefined ? {} : {[TAG_ENVIRONMENT]: owner.environment})}
}

/** Whose an image is, by its tags: ours, legacy (baked before images carried the project) or another project's (or environment's). */
export type Ownership = 'ours' | 'legacy' | 'other'

export function ownershipOf(tags: Readonly<Record<string, string>>, owner: ImageOwner): Ownership {
  const project = tags[TAG_PROJECT]
  if (project === undefined) return 'legacy'
  if (project !== owner.project) return 'other'
  // Another environment's image (or an environment's, seen from a project without them) is not ours.
  return tags[TAG_ENVIRONMENT] === owner.environment ? 'ours' : 'other'
}

/**
 * A name AWS wants unique per account and region (an ASG, a launch template's prefix, a Name tag):
 * GROUP, or GROUP.ENV in an environment, as the group's stack is named.
 */
export function qualifiedName(group: string, environment: string | undefined): string {
  return environment === undefined ? group : `${group}.${environment}`
}
/** The blue-green generation of an ASG. */
export const TAG_GENERATION = 'muster:generation'

/**
 * Instance metadata: IMDSv2 only (session tokens required), endpoint on, hop limit 1 so a
 * container on the node cannot reach it, instance tags not exposed through it.
 */
export const IMDS = {endpoint: 'enabled', tokens: 'required', hopLimit: 1, instanceTags: 'disabled'} as const

/** One-off instance names become resource, tag and key pair names: letters, digits, _ and -, at most 64. */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/
export const INSTANCE_NAME_RULE = 'Use letters, digits, "_" and "-", starting with a letter or digit (at most 64).'

export function isUsableInstanceName(name: string): boolean {
  return INSTANCE_NAME.test(name)
}
