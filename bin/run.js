#!/usr/bin/env node
import {execute} from '@oclif/core'

// The AWS SDK prints a multi-line notice on Node 20 at its first call; muster pins the SDK it ships
// with and states its own Node requirement (package.json engines), so the notice is only noise
// on stderr, where progress goes. A user who wants it back sets the variable to "false".
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

// grpc-js gives TLS the endpoint's host as server name even when it is an IP address (etcd at
// https://10.0.0.5:2379 is common), and Node warns about that once per process (DEP0123). The
// certificate is still checked against the IP; the warning only alarms people reading stderr.
const emitWarning = process.emitWarning.bind(process)
process.emitWarning = (warning, ...rest) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? rest[0].code : rest[1]
  if (code === 'DEP0123') return
  emitWarning(warning, ...rest)
}

await execute({dir: import.meta.url})
