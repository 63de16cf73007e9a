// The nodes file's schema: one definition serves validation (with positions, see validate.ts) and
// the published JSON Schema (schema/nodes.schema.json) that editors use to complete and check.
//
// zod is required lazily (its CommonJS build, so this stays synchronous): loading it costs more
// than the rest of `muster show --json`, and a good file is checked by the standalone validator
// compiled from the JSON Schema instead (scripts/build-validator.mjs). zod explains bad files.
import {createRequire} from 'node:module'

import type {z as Z} from 'zod'

/**
 * A group name becomes file names (roles/GROUP.json, dna/instances/GROUP-ID.json), the Pulumi stack,
 * the ASG and launch template names (GROUP-gN, GROUP-…), the AMI name (GROUP TIMESTAMP, at most 128)
 * and tag values: 64 characters leave room in all of them.
 */
export const MAX_GROUP_NAME = 64
/** The reserved top-level entry that names the environments; not a group. */
export const ENVIRONMENTS = '__environments__'
export const GROUP_NAME = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_GROUP_NAME}}$`)
/** AWS limits on a tag: key at most 128 characters, value at most 256. */
export const MAX_TAG_KEY = 128
export const MAX_TAG_VALUE = 256
/** node_min ≤ node_max: the one statement of the rule (the schema refines with it; the model and the fast path use it). */
export function sizesInOrder(spec: {node_min: number; node_max: number}): boolean {
  return spec.node_min <= spec.node_max
}

/** `recipe[cookbook]`, `recipe[cookbook::recipe]` (optionally `@version`), or `role[name]`. */
/** Service and cookbook names: safe as an etcd key segment and as a Chef recipe or cookbook name. */
export const SERVICE_NAME = /^[A-Za-z0-9_.-]+$/
export const COOKBOOK_NAME = SERVICE_NAME
export const RUN_LIST_ITEM = /^(recipe\[[A-Za-z0-9_.-]+(::[A-Za-z0-9_.-]+)?(@[0-9]+(\.[0-9]+){0,2})?\]|role\[[A-Za-z0-9_.:-]+\])$/

/** A Chef cookbook version constraint: "= 1.2.3", "~> 1.2", ">= 1.0", or a bare version. */
export const VERSION_CONSTRAINT = /^((=|~>|>=|>|<=|<) ?)?[0-9]+(\.[0-9]+){0,2}$/
/**
 * An environment's name becomes the Chef environment (environments/NAME.json), a stack name's
 * suffix (GROUP.NAME), the registry project's suffix and AWS names: short, and no "." or "/".
 */
export const ENVIRONMENT_NAME = /^[A-Za-z0-9_-]{1,32}$/

function buildSchemas(z: typeof Z) {
  const runListItem = z
    .string({error: 'expected a string like "recipe[cookbook::recipe]" or "role[name]"'})
    .regex(RUN_LIST_ITEM, {error: 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"'})
  const runList = z.array(runListItem, {error: 'expected a list of run list items, e.g. ["recipe[nginx]"]'})

  const attributes = z.record(z.string(), z.unknown(), {error: 'expected a dict of Chef attributes'})

  const stringList = (what: string) => z.array(z.string({error: `expected a string (${what})`}), {error: `expected a list of ${what}`})
  const nameOf = (what: string) =>
    z.string({error: `expected a ${what} name (a string)`}).regex(SERVICE_NAME, {error: `expected a ${what} name of letters, digits, "_", "." and "-" only`})
  const serviceName = nameOf('service')
  const serviceNames = z.array(serviceName, {error: 'expected a list of service names, e.g. ["api"]'})

  const registrySchema = z
    .strictObject(
      {
        endpoints: z
          .array(
            z.string({error: 'expected an etcd endpoint such as "http://10.0.0.5:2379"'}).regex(/^https?:\/\/[^/@\s]+:\d{1,5}\/?$/, {
              error: 'expected an etcd endpoint http(s)://HOST:PORT, with no user name, password or path, such as "http://10.0.0.5:2379"',
            }),
            {error: 'expected a list of etcd endpoints, e.g. ["http://10.0.0.5:2379"]'},
          )
          .min(1, {error: 'expected at least one etcd endpoint'})
          .describe('etcd endpoints the agents register in, http(s)://HOST:PORT.'),
        project: z
          .string({error: 'expected a project name'})
          .regex(/^[A-Za-z0-9_.-]{1,128}$/, {error: 'expected a project name of 1–128 of A–Z a–z 0–9 _ . -'})
          .optional()
          .describe('The registry project the agents use (default: the Pulumi project\'s name).'),
      },
      {error: 'expected a dict {endpoints, project}'},
    )
  const releaseBucketSchema = z
    .string({error: 'expected an S3 bucket name such as "my-releases"'})
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {error: 'expected an S3 bucket name (3–63 of a–z 0–9 . -, no s3:// and no path), such as "my-releases"'})
  const region = z.string({error: 'expected an AWS region such as "us-east-1"'}).regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, {error: 'expected an AWS region such as "us-east-1"'})
  const instanceType = z.string({error: 'expected an EC2 instance type such as "m5.large"'}).regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, {error: 'expected an EC2 instance type such as "m5.large"'})
  const sourceAmi = z.string({error: 'expected an AMI id such as "ami-1ebb2077"'}).regex(/^ami-[0-9a-f]+$/, {error: 'expected an AMI id such as "ami-1ebb2077"'})
  const tags = z.record(
    // Patterns, not max(): a maxLength would need a runtime helper in the standalone validator.
    z.string().regex(new RegExp(`^[\\s\\S]{0,${MAX_TAG_KEY}}$`), {error: `expected a tag name of at most ${MAX_TAG_KEY} characters (AWS's limit)`}),
    z
      .string({error: 'expected a string tag value'})
      .regex(new RegExp(`^[\\s\\S]{0,${MAX_TAG_VALUE}}$`), {error: `expected a tag value of at most ${MAX_TAG_VALUE} characters (AWS's limit)`}),
    {error: 'expected a dict of tag names to strings'},
  )
  const volumeSize = z.number({error: 'expected a size in GiB'}).int().min(1, {error: 'expected a size in GiB ≥ 1'})
  const count = () => z.number({error: 'expected a whole number'}).int({error: 'expected a whole number'}).min(0, {error: 'expected a whole number ≥ 0'})
  const seconds = () => z.number({error: 'expected a number of seconds'}).positive({error: 'expected a number of seconds greater than 0'})

  const autoscaleSchema = z
    .strictObject(
      {
        timeout: seconds(),
        node_min: count(),
        node_max: count(),
      },
      {error: 'expected false or a dict {timeout, node_min, node_max}'},
    )
    .refine(sizesInOrder, {error: 'expected node_min ≤ node_max', path: ['node_min']})
    .describe('Run the group in an Auto Scaling group: seconds to wait for a rollout, and the size bounds.')

  const serviceSchema = z
    .strictObject(
      {
        port: z.number({error: 'expected a port number'}).int().min(1, {error: 'expected a port 1–65535'}).max(65_535, {error: 'expected a port 1–65535'}).optional(),
        health_check: z.string({error: 'expected a path or command'}).optional().describe('HTTP path (starting with /) checked on the port, or a command.'),
        depends_on: serviceNames.optional().describe('Services whose coming and going re-provisions the nodes that run this service.'),
      },
      {error: 'expected a dict {port, health_check, depends_on}'},
    )
    .describe('Metadata of one service (a recipe of the group\'s service cookbook).')

  const groupSchema = z
    .strictObject(
      {
        description: z.string({error: 'expected a string'}).optional().describe('Human description; becomes the Chef role description.'),
        autoscale: z
          .union([z.literal(false), autoscaleSchema], {error: 'expected false or a dict {timeout, node_min, node_max}'})
          .optional()
          .describe('false, or {timeout, node_min, node_max} for an Auto Scaling group.'),
        type: z.literal('amazon-ebs', {error: 'expected "amazon-ebs" (the only builder muster generates)'}).optional().describe('Packer builder type.'),
        region: region.optional(),
        instance_type: instanceType.optional(),
        source_ami: sourceAmi.optional(),
        from_base: z.boolean({error: 'expected true or false'}).optional().describe('Build from the newest baked __base__ image instead of source_ami.'),
        ssh_username: z.string({error: 'expected a user name'}).optional().describe('User Packer connects as while baking (default "ubuntu").'),
        security_groups: stringList('security group names').optional(),
        subnets: stringList('subnet ids').optional().describe('Subnets for the Auto Scaling group (default: the region\'s default-VPC subnets).'),
        tags: tags.optional(),
        volume_size: volumeSize.optional().describe('Root volume size in GiB.'),
        release_bucket: releaseBucketSchema
          .optional()
          .describe('__base__ only: the S3 bucket instance:deploy uploads releases to (--bucket and MUSTER_RELEASE_BUCKET take precedence).'),
        registry: registrySchema
          .optional()
          .describe('__base__ only: the registry (etcd) the agents on the nodes use; written into each node\'s /etc/muster/agent.json. Never credentials.'),
        default_attributes: attributes.optional(),
        override_attributes: attributes.optional(),
        run_list: runList.optional(),
        post_run_list: runList.optional().describe('Appended after run_list (after inheritance).'),
        packer: z
          .union([z.literal(false), z.record(z.string(), z.unknown())], {error: 'expected false (no baking) or a dict of extra Packer source options'})
          .optional()
          .describe('false: no baking, boot from source_ami and converge at boot; or extra options for the Packer source block.'),
        services: z
          .record(serviceName, serviceSchema, {error: 'expected a dict of service names to {port, health_check, depends_on}'})
          .optional()
          .describe('Metadata of services by name (the S of recipe[C::S]); usually declared once in __base__.'),
        service_cookbooks: z
          .array(nameOf('cookbook'), {error: 'expected a list of cookbook names, e.g. ["seatgeek"]'})
          .optional()
          .describe('Cookbooks whose recipes are services, besides those named *-service. Appended when inherited.'),
        depends_on: serviceNames
          .optional()
          .describe('Services this group calls without running them; their coming and going re-provisions its nodes. Appended when inherited.'),
      },
      {error: 'expected a dict of group settings'},
    )
    .describe('A node group; every group inherits from __base__.')

  // What an environment may change, for every group or for one (see nodes/environments.ts). Never
  // what makes the role or the image: those are the same in every environment.
  const environmentGroupFields = {
    region: region.optional(),
    instance_type: instanceType.optional(),
    source_ami: sourceAmi.optional().describe('The image to build from in this environment (AMI ids differ between regions).'),
    ssh_username: z.string({error: 'expected a user name'}).optional(),
    security_groups: stringList('security group names').optional().describe('Replaces the group\'s list (never appended).'),
    subnets: stringList('subnet ids').optional().describe('Replaces the group\'s list (never appended).'),
    tags: tags.optional().describe('Merged over the group\'s tags.'),
    volume_size: volumeSize.optional(),
    autoscale: z
      .strictObject({timeout: seconds().optional(), node_min: count().optional(), node_max: count().optional()}, {error: 'expected a dict {timeout, node_min, node_max} (any of them)'})
      .optional()
      .describe('Merged over the autoscale of the groups that have one.'),
    packer: z.record(z.string(), z.unknown(), {error: 'expected a dict of extra Packer source options'}).optional().describe('Merged over the group\'s packer options (where the bake runs: vpc_id, subnet_id, …).'),
  }
  const environmentGroupSchema = z.strictObject(environmentGroupFields, {error: 'expected a dict of settings this environment changes for the group'})
  const environmentSchema = z
    .strictObject(
      {
        default: z.boolean({error: 'expected true or false'}).optional().describe('The environment verbs use without --env or MUSTER_ENV (default: the first one listed).'),
        description: z.string({error: 'expected a string'}).optional().describe('The Chef environment\'s description.'),
        ...environmentGroupFields,
        default_attributes: attributes.optional().describe('The Chef environment\'s default attributes (above the role\'s defaults).'),
        override_attributes: attributes.optional().describe('The Chef environment\'s override attributes (above the role\'s overrides).'),
        cookbook_versions: z
          .record(nameOf('cookbook'), z.string({error: 'expected a version constraint such as "= 1.2.3" or "~> 1.2"'}).regex(VERSION_CONSTRAINT, {error: 'expected a version constraint such as "= 1.2.3", "~> 1.2" or ">= 1.0"'}), {
            error: 'expected a dict of cookbook names to version constraints',
          })
          .optional()
          .describe('The Chef environment\'s cookbook version pins.'),
        registry: registrySchema.optional().describe('This environment\'s registry (etcd endpoints, project).'),
        release_bucket: releaseBucketSchema.optional().describe('This environment\'s release bucket.'),
        groups: z.record(z.string(), environmentGroupSchema, {error: 'expected a dict of group names to the settings this environment changes'}).optional().describe('Per group: what this environment changes for that group alone.'),
      },
      {error: 'expected a dict of what this environment changes'},
    )
    .describe('One environment: what it changes for every group, and per group.')
  return {groupSchema, autoscaleSchema, serviceSchema, environmentSchema, environmentGroupSchema}
}

let built: ReturnType<typeof buildSchemas> | undefined
/** The zod schemas, built on first use. */
export function schemas(): ReturnType<typeof buildSchemas> {
  built ??= buildSchemas((createRequire(import.meta.url)('zod') as {z: typeof Z}).z)
  return built
}

type Schemas = ReturnType<typeof buildSchemas>
export type RawGroup = Z.infer<Schemas['groupSchema']>
export type AutoscaleSpec = Z.infer<Schemas['autoscaleSchema']>
export type ServiceSpec = Z.infer<Schemas['serviceSchema']>
export type RawEnvironment = Z.infer<Schemas['environmentSchema']>
export type RawEnvironmentGroup = Z.infer<Schemas['environmentGroupSchema']>

/** The JSON Schema editors use; the nodes file is a dict of group name → group. */
export function nodesJsonSchema(): Record<string, unknown> {
  const z = (createRequire(import.meta.url)('zod') as {z: typeof Z}).z
  const group = z.toJSONSchema(schemas().groupSchema, {target: 'draft-7', unrepresentable: 'any'})
  delete group.$schema
  const environment = z.toJSONSchema(schemas().environmentSchema, {target: 'draft-7', unrepresentable: 'any'})
  delete environment.$schema
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://muster.dev/schema/nodes.schema.json',
    title: 'muster nodes file',
    description: 'Every node group of the fleet. Each group inherits from __base__: lists are appended (parent first), dicts merged at level 1, anything else overridden.',
    type: 'object',
    propertyNames: {pattern: GROUP_NAME.source},
    properties: {
      [ENVIRONMENTS]: {
        description: 'The environments (staging, production, …) and what each changes; see "Environments" in the README.',
        type: 'object',
        propertyNames: {pattern: ENVIRONMENT_NAME.source},
        additionalProperties: {$ref: '#/definitions/environment'},
      },
    },
    additionalProperties: {$ref: '#/definitions/group'},
    definitions: {group, environment},
  }
}
