// Pure: engine events in, a per-resource change list out. Used for the preview shown before a
// mutating verb asks, for `muster preview`'s Markdown, and for progress lines.
//
// It names no Pulumi type: the I/O host and the base command carry ChangeSets, and the agent's
// commands (node-side) extend that base command, so this file must not reach @pulumi, not even by
// a type import. StepEvent is the part of Pulumi's EngineEvent it reads; EngineEvent fits it.

/** The part of an engine event (Pulumi's EngineEvent) that says what a step does to a resource. */
export interface StepEvent {
  resourcePreEvent?: {
    metadata: {op: string; urn: string; type: string; keys?: string[]; diffs?: string[]; detailedDiff?: Record<string, unknown>}
  }
}

export type ChangeOp = 'create' | 'update' | 'replace' | 'delete' | 'same' | 'read' | 'other'

export interface ResourceChange {
  urn: string
  type: string
  name: string
  op: ChangeOp
  /** Changed input properties, when the engine says. */
  properties: string[]
}

export interface ChangeSet {
  stack: string
  changes: ResourceChange[]
  counts: Record<'create' | 'update' | 'replace' | 'delete', number>
}

export function nameOfUrn(urn: string): string {
  return urn.split('::').pop() ?? urn
}

function normaliseOp(op: string): ChangeOp {
  switch (op) {
    case 'create':
    case 'update':
    case 'delete':
    case 'same':
    case 'read':
      return op
    case 'replace':
    case 'create-replacement':
    case 'delete-replaced':
      return 'replace'
    default:
      return 'other'
  }
}

/** Folds step events into one change per resource (a replace's several steps become one). */
export function collectChanges(stack: string, events: readonly StepEvent[]): ChangeSet {
  const byUrn = new Map<string, ResourceChange>()
  for (const event of events) {
    const metadata = event.resourcePreEvent?.metadata
    if (!metadata) continue
    // The stack resource itself and providers are bookkeeping, not the user's resources.
    if (metadata.type === 'pulumi:pulumi:Stack' || metadata.type.startsWith('pulumi:providers:')) continue
    const op = normaliseOp(metadata.op)
    const previous = byUrn.get(metadata.urn)
    if (previous && previous.op === 'replace') continue
    // diffs: changed properties; keys: the ones that force a replace; detailedDiff: per property.
    const properties = [...new Set([...(metadata.diffs ?? []), ...(metadata.keys ?? []), ...Object.keys(metadata.detailedDiff ?? {})])].sort()
    byUrn.set(metadata.urn, {urn: metadata.urn, type: metadata.type, name: nameOfUrn(metadata.urn), op, properties})
  }
  const changes = [...byUrn.values()]
  const count = (op: ChangeOp): number => changes.filter((c) => c.op === op).length
  return {stack, changes, counts: {create: count('create'), update: count('update'), replace: count('replace'), delete: count('delete')}}
}

export function hasChanges(set: ChangeSet): boolean {
  return set.counts.create + set.counts.update + set.counts.replace + set.counts.delete > 0
}
