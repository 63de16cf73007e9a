// What the verbs asked for, recorded in the stack's config (stacks/Pulumi.GROUP.yaml) so that
// `pulumi config`, `pulumi preview` and the Pulumi Cloud dashboard show exactly that, and
// `muster up GROUP` converges everything recorded. Pure: config map in, intent out, and back.

export const CONFIG_NAMESPACE = 'muster'
export const DEFAULT_KEEP = 10

export interface InstanceIntent {
  /** Unique within the group; the instance's Name tag is GROUP-NAME. */
  name: string
  /** Availability zone; chosen at random from the region's zones when the instance is created. */
  zone: string
  /** OpenSSH public key derived from the user's PEM (never the private key). */
  publicKey?: string
}

export interface Intent {
  /** Bake an AMI with Packer (packer:run). */
  bake: boolean
  /** AMIs of the group to keep (packer:clean -n). */
  keep: number
  /** Run the Auto Scaling group (autoscale:run). */
  fleet: boolean
  /**
   * Auto Scaling group generations the stack holds: [N] normally, [N, N+1] during a blue-green
   * update until the old one is retired (and [N, N+1, N+2] when an interrupted one is rerun; see
   * blueGreenSteps in fleet-service.ts).
   */
  generations: number[]
  /** One-off instances (instance:create). */
  instances: InstanceIntent[]
  /**
   * When packer:clean last asked for retention (ISO time). A new value re-runs the retention
   * part; `muster up` keeps it, so it does not re-run retention on every converge.
   */
  cleanedAt?: string
  /**
   * The image the group's machines run instead of a bake of its own (packer:promote): the exact AMI
   * another environment runs, copied into this region when the two differ. While it is set the
   * bake part is off and the stack's ami output is this image.
   */
  image?: PinnedImage
}

/** An AMI promoted from another environment, and where it came from. */
export interface PinnedImage {
  /** The AMI in this group's region. */
  id: string
  /** The environment it was promoted from. */
  from: string
  /** The AMI the source environment runs (equal to id unless copied). */
  sourceId: string
  sourceRegion: string
  /** When it was promoted (ISO time). */
  promotedAt: string
}

export const emptyIntent = (): Intent => ({bake: false, keep: DEFAULT_KEEP, fleet: false, generations: [0], instances: []})

const key = (name: string): string => `${CONFIG_NAMESPACE}:${name}`

export type ConfigMap = Record<string, {value: string; secret?: boolean}>

export function intentFromConfig(config: ConfigMap): Intent {
  const intent = emptyIntent()
  const get = (name: string): string | undefined => config[key(name)]?.value
  intent.bake = get('bake') === 'true'
  intent.fleet = get('fleet') === 'true'
  const keep = Number(get('keep'))
  if (Number.isInteger(keep) && keep >= 1) intent.keep = keep
  const generations = get('generations')
  if (generations) {
    const parsed = JSON.parse(generations) as unknown
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((g) => Number.isInteger(g) && g >= 0)) intent.generations = parsed as number[]
  }
  const cleanedAt = get('cleanedAt')
  if (cleanedAt) intent.cleanedAt = cleanedAt
  const image = get('image')
  if (image) {
    const parsed = parseJson(image)
    if (isPinnedImage(parsed)) intent.image = parsed
  }
  const instances = get('instances')
  if (instances) {
    const parsed = JSON.parse(instances) as unknown
    if (Array.isArray(parsed)) intent.instances = parsed.filter(isInstanceIntent)
  }
  return intent
}

export function intentToConfig(intent: Intent): ConfigMap {
  return {
    [key('bake')]: {value: String(intent.bake)},
    [key('keep')]: {value: String(intent.keep)},
    [key('fleet')]: {value: String(intent.fleet)},
    [key('generations')]: {value: JSON.stringify(intent.generations)},
    [key('instances')]: {value: JSON.stringify(intent.instances)},
    ...(intent.cleanedAt ? {[key('cleanedAt')]: {value: intent.cleanedAt}} : {}),
    ...(intent.image ? {[key('image')]: {value: JSON.stringify(intent.image)}} : {}),
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

const AMI_ID = /^ami-[0-9a-f]{8,17}$/

/** A pinned image as recorded (a config file is edited by hand too: anything else is ignored). */
export function isPinnedImage(value: unknown): value is PinnedImage {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.id === 'string' && AMI_ID.test(v.id) && typeof v.from === 'string' && typeof v.sourceId === 'string' && AMI_ID.test(v.sourceId) &&
    typeof v.sourceRegion === 'string' && typeof v.promotedAt === 'string'
  )
}

/** The image pinned in a stack config file's text (stacks/Pulumi.GROUP.ENV.yaml), read without the engine. */
export function pinnedImageOf(config: Record<string, unknown> | undefined): PinnedImage | undefined {
  const value = config?.[key('image')]
  const parsed = typeof value === 'string' ? parseJson(value) : value
  return isPinnedImage(parsed) ? parsed : undefined
}

function isInstanceIntent(value: unknown): value is InstanceIntent {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.name === 'string' && typeof v.zone === 'string' && (v.publicKey === undefined || typeof v.publicKey === 'string')
}

/** The parts of a recorded intent that `muster up --withdraw` takes back. */
export const WITHDRAWABLE = ['fleet', 'instances'] as const
export type Withdrawable = (typeof WITHDRAWABLE)[number]

/**
 * The intent without the parts named: no fleet (its generations stay, so a later autoscale:run
 * names its ASG as before), no one-off instances. Converging it removes their resources.
 */
export function withdrawIntent(intent: Intent, parts: readonly Withdrawable[]): Intent {
  return {...intent, ...(parts.includes('fleet') ? {fleet: false} : {}), ...(parts.includes('instances') ? {instances: []} : {})}
}
