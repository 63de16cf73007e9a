// Stacks whose group is gone from the nodes file (preview and status list them): what they are and
// the one verb that takes each down. In an environment an orphan is GROUP.ENV, taken down with
// muster destroy GROUP --env ENV.

/** The destroy command of an orphan stack, as seen from an environment (or from a file without any). */
function destroyArgs(name: string, environment: string | undefined): string {
  const suffix = environment === undefined ? '' : `.${environment}`
  if (suffix !== '' && name.endsWith(suffix)) return `${name.slice(0, -suffix.length)} --env ${environment}`
  // A GROUP stack from before the file had environments: in an environment, GROUP names GROUP.ENV,
  // so only a nodes file without environments (the one from before) names this stack.
  if (environment !== undefined && !name.includes('.')) return `${name} --nodes NODES-FILE-WITHOUT-ENVIRONMENTS`
  return name
}

export function formatOrphans(orphans: readonly string[], nodesFile: string, environment?: string): string {
  if (orphans.length === 0) return ''
  const lines = [`Stacks with no group in ${nodesFile} (orphans): ${orphans.join(', ')}`]
  for (const name of orphans) lines.push(`  muster destroy ${destroyArgs(name, environment)} --remove   takes ${name} down (after a preview and a confirmation)`)
  return `${lines.join('\n')}\n`
}

export function formatOrphansMarkdown(orphans: readonly string[], nodesFile: string, environment?: string): string {
  if (orphans.length === 0) return ''
  const lines = ['', `### Orphan stacks (no group in \`${nodesFile}\`)`, '', '| stack | to take it down |', '|---|---|']
  for (const name of orphans) lines.push(`| ${name} | \`muster destroy ${destroyArgs(name, environment)} --remove\` |`)
  return `${lines.join('\n')}\n`
}
