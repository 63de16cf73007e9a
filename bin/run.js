#!/usr/bin/env node
import {execute} from '@oclif/core'

// The AWS SDK prints a multi-line notice on Node 20 at its first call; muster pins the SDK it ships
// with and states its own Node requirement (package.json engines), so the notice is only noise
// on stderr, where progress goes. A user who wants it back sets the variable to "false".
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

await execute({dir: import.meta.url})
