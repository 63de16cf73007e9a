// What still uses an image: launch template versions, Auto Scaling groups (launch configuration,
// launch template or mixed-instances policy) and instances that are not terminated, each listed
// with the SDK's paginators. The ImageStore in ec2.ts asks it for imagesInUse.
import {
  type AutoScalingClient,
  type AutoScalingGroup,
  type LaunchTemplateSpecification,
  paginateDescribeAutoScalingGroups,
  paginateDescribeLaunchConfigurations,
} from '@aws-sdk/client-auto-scaling'
import {
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  type Filter,
  paginateDescribeInstances,
  paginateDescribeLaunchTemplates,
  paginateDescribeLaunchTemplateVersions,
} from '@aws-sdk/client-ec2'

import {mapBounded} from '../lib/parallel.js'
import {TAG_ENVIRONMENT} from '../lib/tags.js'
import {aws, isAwsError} from './errors.js'

export type ImageUserKind = 'launch-template' | 'auto-scaling-group' | 'instance' | 'pinned'

/** Something that would break, or launch from a missing image, if the image went away. */
export interface ImageUser {
  kind: ImageUserKind
  /** Launch template id, Auto Scaling group name or instance id. */
  id: string
  /** For people: "launch template web (lt-0abc) version 3". */
  description: string
  /** The environment the user belongs to (its muster:environment tag, or the stack that pins the image). */
  environment?: string
}

/** The muster:environment tag among an AWS resource's tags, if any. */
function environmentOf(tags: ReadonlyArray<{Key?: string | undefined; Value?: string | undefined}> | undefined): {environment?: string} {
  const value = tags?.find((t) => t.Key === TAG_ENVIRONMENT)?.Value
  return value ? {environment: value} : {}
}

/** Image id → what uses it. Images nothing uses are absent. */
export type ImagesInUse = ReadonlyMap<string, readonly ImageUser[]>

/** What uses each image (of `imageIds`, or any); [] asks nothing of AWS. */
export async function imagesInUse(ec2: EC2Client, autoscaling: AutoScalingClient, region: string, imageIds: readonly string[] | undefined): Promise<ImagesInUse> {
  if (imageIds !== undefined && imageIds.length === 0) return new Map()
  const users = new UsersByImage(imageIds)
  const templates = await aws(`listing the launch templates in ${region}`, () => readLaunchTemplates(ec2))
  addTemplateUsers(templates, users)
  await aws(`listing the Auto Scaling groups in ${region}`, () => addAsgUsers(autoscaling, ec2, templates, users))
  await aws(`listing the instances in ${region}`, () => addInstanceUsers(ec2, imageIds, users))
  return users.byImage
}

/** Image id → its users, each once; with a set of wanted images, the others are left out. */
class UsersByImage {
  readonly byImage = new Map<string, ImageUser[]>()
  private readonly wanted: Set<string> | undefined

  constructor(imageIds: readonly string[] | undefined) {
    this.wanted = imageIds === undefined ? undefined : new Set(imageIds)
  }

  add(imageId: string | undefined, user: ImageUser): void {
    if (!imageId || (this.wanted && !this.wanted.has(imageId))) return
    const list = this.byImage.get(imageId) ?? []
    if (!list.some((u) => u.kind === user.kind && u.description === user.description)) list.push(user)
    this.byImage.set(imageId, list)
  }
}

/** Every launch template version that names an image uses it. */
function addTemplateUsers(templates: ReadonlyMap<string, LaunchTemplateInfo>, users: UsersByImage): void {
  for (const template of templates.values()) {
    for (const [version, imageId] of template.versions) {
      users.add(imageId, {kind: 'launch-template', id: template.id, description: `launch template ${template.name} (${template.id}) version ${version}`, ...template.environment})
    }
  }
}

/** ASGs use images through launch templates (directly or in a mixed-instances policy) or launch configurations. */
async function addAsgUsers(autoscaling: AutoScalingClient, ec2: EC2Client, templates: Map<string, LaunchTemplateInfo>, users: UsersByImage): Promise<void> {
  const asgsByLaunchConfiguration = new Map<string, string[]>()
  for await (const page of paginateDescribeAutoScalingGroups({client: autoscaling, pageSize: 100}, {})) {
    for (const asg of page.AutoScalingGroups ?? []) {
      const name = asg.AutoScalingGroupName ?? '?'
      if (asg.LaunchConfigurationName) asgsByLaunchConfiguration.set(asg.LaunchConfigurationName, [...(asgsByLaunchConfiguration.get(asg.LaunchConfigurationName) ?? []), name])
      for (const spec of launchTemplateSpecs(asg)) {
        const resolved = await resolveLaunchTemplate(ec2, templates, spec)
        if (resolved) users.add(resolved.imageId, {kind: 'auto-scaling-group', id: name, description: `Auto Scaling group ${name} (launch template ${resolved.name} version ${resolved.version})`, ...environmentOf(asg.Tags)})
      }
    }
  }
  if (asgsByLaunchConfiguration.size === 0) return
  for await (const page of paginateDescribeLaunchConfigurations({client: autoscaling, pageSize: 50}, {})) {
    for (const lc of page.LaunchConfigurations ?? []) {
      for (const asgName of asgsByLaunchConfiguration.get(lc.LaunchConfigurationName ?? '') ?? []) {
        users.add(lc.ImageId, {kind: 'auto-scaling-group', id: asgName, description: `Auto Scaling group ${asgName} (launch configuration ${lc.LaunchConfigurationName ?? '?'})`})
      }
    }
  }
}

/** EC2 takes at most 200 values in a filter; beyond that every instance is listed and the wanted ones kept. */
const MAX_FILTER_VALUES = 200

async function addInstanceUsers(ec2: EC2Client, imageIds: readonly string[] | undefined, users: UsersByImage): Promise<void> {
  // Stopped instances count: starting one again needs nothing of the image, but replacing
  // its root volume or launching "more like this" does, and AWS calls them in use too.
  const filters: Filter[] = [{Name: 'instance-state-name', Values: ['pending', 'running', 'shutting-down', 'stopping', 'stopped']}]
  const ids = imageIds === undefined ? [] : [...new Set(imageIds)]
  // An image-id filter keeps the listing to the group's images in a big account.
  if (ids.length > 0 && ids.length <= MAX_FILTER_VALUES) filters.push({Name: 'image-id', Values: ids})
  for await (const page of paginateDescribeInstances({client: ec2, pageSize: 1000}, {Filters: filters})) {
    for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const id = instance.InstanceId ?? '?'
      users.add(instance.ImageId, {kind: 'instance', id, description: `instance ${id} (${instance.State?.Name ?? 'unknown'})`, ...environmentOf(instance.Tags)})
    }
  }
}

interface LaunchTemplateInfo {
  id: string
  name: string
  defaultVersion: number | undefined
  latestVersion: number | undefined
  /** Version number → image id (undefined: the version names no image, or only an SSM parameter). */
  versions: Map<number, string | undefined>
  environment: {environment?: string}
}

/** Every version of every launch template in the region. */
async function readLaunchTemplates(ec2: EC2Client): Promise<Map<string, LaunchTemplateInfo>> {
  const templates = new Map<string, LaunchTemplateInfo>()
  // MaxResults matters beyond the API's page size: moto truncates to 15 without a NextToken.
  for await (const page of paginateDescribeLaunchTemplates({client: ec2, pageSize: 200}, {})) {
    for (const t of page.LaunchTemplates ?? []) {
      if (!t.LaunchTemplateId) continue
      templates.set(t.LaunchTemplateId, {
        id: t.LaunchTemplateId,
        name: t.LaunchTemplateName ?? t.LaunchTemplateId,
        defaultVersion: t.DefaultVersionNumber,
        latestVersion: t.LatestVersionNumber,
        versions: new Map(),
        environment: environmentOf(t.Tags),
      })
    }
  }
  // One listing per template (the API cannot list every version of every template at once);
  // a few at a time so a region with many templates is not throttled.
  await mapBounded([...templates.values()], 8, async (template) => {
    const pages = paginateDescribeLaunchTemplateVersions({client: ec2, pageSize: 200}, {LaunchTemplateId: template.id})
    for await (const page of pages) {
      for (const v of page.LaunchTemplateVersions ?? []) {
        if (v.VersionNumber !== undefined) template.versions.set(v.VersionNumber, directImageId(v.LaunchTemplateData?.ImageId))
      }
    }
  })
  return templates
}

/**
 * A launch template may name its image as "resolve:ssm:PARAMETER"; which AMI that is depends on
 * the parameter at launch time. muster's own templates name the AMI, so such a version counts
 * as using nothing here.
 */
function directImageId(imageId: string | undefined): string | undefined {
  return imageId?.startsWith('ami-') ? imageId : undefined
}

function launchTemplateSpecs(asg: AutoScalingGroup): LaunchTemplateSpecification[] {
  const specs: LaunchTemplateSpecification[] = []
  if (asg.LaunchTemplate) specs.push(asg.LaunchTemplate)
  const mixed = asg.MixedInstancesPolicy?.LaunchTemplate
  if (mixed?.LaunchTemplateSpecification) specs.push(mixed.LaunchTemplateSpecification)
  for (const override of mixed?.Overrides ?? []) {
    if (override.LaunchTemplateSpecification) specs.push(override.LaunchTemplateSpecification)
  }
  return specs
}

/** The image an ASG's launch template reference launches, from the listing or (if newer) from EC2. */
async function resolveLaunchTemplate(
  ec2: EC2Client,
  templates: Map<string, LaunchTemplateInfo>,
  spec: LaunchTemplateSpecification,
): Promise<{name: string; version: string; imageId: string | undefined} | undefined> {
  const template = spec.LaunchTemplateId
    ? templates.get(spec.LaunchTemplateId)
    : [...templates.values()].find((t) => t.name === spec.LaunchTemplateName)
  // An ASG without a version launches the template's default version.
  const wanted = spec.Version ?? '$Default'
  if (template) {
    const number = wanted === '$Latest' ? template.latestVersion : wanted === '$Default' ? template.defaultVersion : Number(wanted)
    if (number !== undefined && template.versions.has(number)) {
      return {name: template.name, version: wanted, imageId: template.versions.get(number)}
    }
  }
  // Created or changed since the listing above: ask for that one version.
  try {
    const {LaunchTemplateVersions} = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({
        ...(spec.LaunchTemplateId ? {LaunchTemplateId: spec.LaunchTemplateId} : {LaunchTemplateName: spec.LaunchTemplateName}),
        Versions: [wanted],
      }),
    )
    const found = LaunchTemplateVersions?.[0]
    if (!found) return undefined
    return {name: found.LaunchTemplateName ?? spec.LaunchTemplateName ?? '?', version: wanted, imageId: directImageId(found.LaunchTemplateData?.ImageId)}
  } catch (error) {
    // The ASG names a template that no longer exists: it cannot launch anything, so it uses no image.
    if (isAwsError(error, 'InvalidLaunchTemplateId.NotFound', 'InvalidLaunchTemplateName.NotFoundException', 'InvalidLaunchTemplateId.VersionNotFound', 'InvalidLaunchTemplateId.Malformed')) return undefined
    throw error
  }
}
