// Writes schema/nodes.schema.json from the zod schema the CLI validates with (`npm run schema`);
// a test fails when the committed file is stale.
import {writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {toJsonText} from '../src/artifacts/json.js'
import {nodesJsonSchema} from '../src/nodes/schema.js'

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'nodes.schema.json')
writeFileSync(target, toJsonText(nodesJsonSchema()))
console.log(`wrote ${target}`)
