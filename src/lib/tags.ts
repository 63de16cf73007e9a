// Tag keys, resource-name rules and the instance metadata options muster puts on what it makes in
// AWS, in one place: the Packer template, the stack's parts and the AWS look-ups agree by reading
// them here. Plain values: nothing here loads Pulumi or an AWS SDK.

/** The group of an AMI, a launch template or a machine: muster:group=GROUP. */
export const TAG_GROUP = 'muster:group'
/** The paper's tag on a group's ASG and its instances: group=GROUP. */
export const TAG_GROUP_PLAIN = 'group'
/** The hash of the Packer template an AMI was baked from. */
export const TAG_TEMPLATE_HASH = 'muster:template-hash'
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
