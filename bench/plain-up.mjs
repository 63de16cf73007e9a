// The baseline for bench/stacks.ts: a plain Automation API `up` of the very program muster builds
// for `packer:run`, on the same backend, in a process of its own — no muster CLI around it.
// Usage (from a muster project dir): node bench/plain-up.mjs GROUP TRIGGER
import {LocalWorkspace} from '@pulumi/pulumi/automation/index.js'

const dist = new URL('../dist/', import.meta.url)
const {loadNodes} = await import(new URL('nodes/load.js', dist).href)
const {buildContext} = await import(new URL('stacks/context.js', dist).href)
const {groupProgram} = await import(new URL('stacks/program.js', dist).href)
const {emptyIntent} = await import(new URL('stacks/intent.js', dist).href)
const {engineEnv} = await import(new URL('stacks/session.js', dist).href)
const {chooseBackend} = await import(new URL('stacks/backend.js', dist).href)

const [group, trigger] = process.argv.slice(2)
const root = process.cwd()
const nodes = loadNodes({cwd: root})
const context = buildContext(root, nodes, nodes.groups.get(group), {...emptyIntent(), bake: true}, {writeTemplate: false})
context.bake.cookbooksHash = trigger
const backend = chooseBackend(root)
const stack = await LocalWorkspace.createOrSelectStack(
  {stackName: group, projectName: 'muster', program: groupProgram(context)},
  {workDir: root, envVars: engineEnv(root, backend), secretsProvider: 'passphrase'},
)
await stack.up()
