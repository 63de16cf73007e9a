// etcd endpoints' rules, with no etcd client behind them: the nodes file's __base__.registry, --etcd,
// MUSTER_ETCD_ENDPOINTS and the agent's config are all checked here (the nodes loader must not
// load etcd3).

import {UserError} from '../errors.js'

/** What is wrong with `url` as an etcd endpoint (http(s)://HOST:PORT, no user info, no path), if anything. */
function endpointFault(url: string): 'credentials' | 'shape' | undefined {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  if (parsed && (parsed.username !== '' || parsed.password !== '')) return 'credentials'
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.port === '' || parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') return 'shape'
  return undefined
}

/** Why `url` is not an etcd endpoint, or undefined. */
export function endpointProblem(url: string): string | undefined {
  const fault = endpointFault(url)
  if (fault === 'credentials') return 'an endpoint must not carry a user name or password (logs, process lists and user data would show them); write it as http://HOST:PORT'
  if (fault === 'shape') return `${JSON.stringify(url)} is not an etcd endpoint; write it as http://HOST:PORT (https:// for TLS)`
  return undefined
}

/** "http://a:2379,http://b:2379" → checked URLs (--etcd, MUSTER_ETCD_ENDPOINTS, the agent's config). */
export function parseEndpoints(text: string, source: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  if (list.length === 0) throw new UserError(`${source} names no etcd endpoint`, {hint: 'Give --etcd http://HOST:2379[,http://HOST2:2379] or set MUSTER_ETCD_ENDPOINTS.'})
  for (const url of list) {
    const fault = endpointFault(url)
    if (fault === 'credentials') {
      throw new UserError(`${source}: an endpoint must not carry a user name or password`, {hint: 'Write it as http://HOST:PORT; credentials never go in a URL, where logs and process lists show them.'})
    }
    if (fault === 'shape') {
      throw new UserError(`${source}: ${JSON.stringify(url)} is not an etcd endpoint`, {hint: 'Write each endpoint as http://HOST:PORT (https:// for TLS), separated by commas.'})
    }
  }
  return list
}
