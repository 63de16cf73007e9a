// One etcd endpoint's rules, with no etcd client behind them: the nodes file's __base__.registry is
// checked with these (the nodes loader must not load etcd3), and they are parseEndpoints' rules
// (src/registry/etcd.ts) for --etcd and MUSTER_ETCD_ENDPOINTS.

/** Why `url` is not an etcd endpoint (http(s)://HOST:PORT, no user info, no path), or undefined. */
export function endpointProblem(url: string): string | undefined {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  if (parsed && (parsed.username !== '' || parsed.password !== '')) {
    return 'an endpoint must not carry a user name or password (logs, process lists and user data would show them); write it as http://HOST:PORT'
  }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.port === '' || parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') {
    return `${JSON.stringify(url)} is not an etcd endpoint; write it as http://HOST:PORT (https:// for TLS)`
  }
  return undefined
}
