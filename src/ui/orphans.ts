// Stacks whose group is gone from the nodes file (preview and status list them): what they are and
// the one verb that takes each down.

export function formatOrphans(orphans: readonly string[], nodesFile: string): string {
  if (orphans.length === 0) return ''
  const lines = [`Stacks with no group in ${nodesFile} (orphans): ${orphans.join(', ')}`]
  for (const name of orphans) lines.push(`  muster destroy ${name} --remove   takes ${name} down (after a preview and a confirmation)`)
  return `${lines.join('\n')}\n`
}

export function formatOrphansMarkdown(orphans: readonly string[], nodesFile: string): string {
  if (orphans.length === 0) return ''
  const lines = ['', `### Orphan stacks (no group in \`${nodesFile}\`)`, '', '| stack | to take it down |', '|---|---|']
  for (const name of orphans) lines.push(`| ${name} | \`muster destroy ${name} --remove\` |`)
  return `${lines.join('\n')}\n`
}
