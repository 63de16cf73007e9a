// The paper's merge rules, on plain values: lists are appended (parent first), dicts merged at
// level 1 only (the child's value for a key replaces the parent's), anything else overridden.

export type Plain = Record<string, unknown>

export function isDict(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function inherit(parent: Plain, child: Plain): Plain {
  const merged: Plain = {...parent}
  for (const [key, value] of Object.entries(child)) {
    const inherited = parent[key]
    if (Array.isArray(inherited) && Array.isArray(value)) merged[key] = [...inherited, ...value]
    else if (isDict(inherited) && isDict(value)) merged[key] = {...inherited, ...value}
    else merged[key] = value
  }
  return merged
}

/** `recipe[x]` is Chef's shorthand for `recipe[x::default]`; the paper writes roles in long form. */
export function normaliseRunListItem(item: string): string {
  const match = /^recipe\[([^\]:@]+)(@[^\]]+)?\]$/.exec(item)
  return match ? `recipe[${match[1]}::default${match[2] ?? ''}]` : item
}

/** Normalised, and each item kept once, at its first place. */
export function uniqueRunList(items: readonly string[]): string[] {
  return [...new Set(items.map(normaliseRunListItem))]
}
