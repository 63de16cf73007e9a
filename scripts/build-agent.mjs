// Build step: the node agent as one self-contained file, dist/muster-agent.mjs, that the node's
// Node.js runs (`node muster-agent.mjs --config /etc/muster/agent.json`). A bundle rather than a
// Node single executable application: a few MB instead of ~100 (a SEA carries a whole Node), one
// file for every architecture, and the image already has the Node it runs on. esbuild is the
// bundler (already here through tsx). The build fails if anything of Pulumi or the EC2/Auto
// Scaling SDKs got in: the node side must never carry them.
import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'
import protobuf from 'protobufjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const {version} = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const outfile = join(root, 'dist', 'muster-agent.mjs')

// etcd3 reads its .proto files from disk when it loads (proto-loader's loadSync on a path beside
// its own code), which a one-file bundle cannot carry. Parse them here instead and hand
// proto-loader the same definitions as JSON (its fromJSON), with the same options.
const etcdProto = join(root, 'node_modules', 'etcd3', 'proto', 'rpc.proto')
const protoJson = JSON.stringify(new protobuf.Root().loadSync(etcdProto, {keepCase: true}).toJSON())
const inlineEtcdProto = {
  name: 'inline-etcd3-proto',
  setup(b) {
    b.onLoad({filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/}, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const call = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`,'
      if (!source.includes(call)) throw new Error(`etcd3 changed how it loads its protos (${args.path}); update scripts/build-agent.mjs`)
      return {contents: source.replace(call, `(0, proto_loader_1.fromJSON)(${protoJson},`), loader: 'js'}
    })
  },
}

// muster's own code loads zod and yaml lazily, through createRequire, so the CLI pays for them only
// when it needs them. esbuild cannot follow such a call; in the bundle they become plain require()s
// of the same modules, which it bundles (and loading them up front costs a daemon nothing).
const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad({filter: /[\\/]src[\\/]nodes[\\/][^\\/]+\.ts$/}, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const contents = source
        .replace(/createRequire\(import\.meta\.url\)\((['"][a-z@][\w@/.-]*['"])\)/g, 'require($1)')
        .replace(/\brequireCjs\((['"][a-z@][\w@/.-]*['"])\)/g, 'require($1)')
      return {contents, loader: 'ts'}
    })
  },
}

const result = await build({
  entryPoints: [join(root, 'src', 'agent', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Prefer a package's ES module build: jsonc-parser's CommonJS one is UMD, whose require()s of its
  // own files esbuild cannot see.
  mainFields: ['module', 'main'],
  // CommonJS dependencies (grpc-js, etcd3) call require() on Node's built-ins; in an ES module
  // bundle that needs a require of its own.
  banner: {js: "import {createRequire as __musterCreateRequire} from 'node:module'; const require = __musterCreateRequire(import.meta.url);"},
  // muster's own haproxy template travels inside the bundle (src/agent/haproxy-template.ts).
  define: {MUSTER_VERSION: JSON.stringify(version), MUSTER_HAPROXY_TEMPLATE: JSON.stringify(readFileSync(join(root, 'templates', 'haproxy.cfg'), 'utf8'))},
  legalComments: 'eof',
  metafile: true,
  plugins: [inlineEtcdProto, lazyRequires],
  logLevel: 'warning',
})

const forbidden = Object.keys(result.metafile.inputs).filter((path) => /node_modules\/(@pulumi\/|@aws-sdk\/client-(ec2|auto-scaling)\/)/.test(path))
if (forbidden.length > 0) {
  throw new Error(`the agent bundle must not contain Pulumi or the EC2/Auto Scaling SDKs, but has:\n${forbidden.slice(0, 10).join('\n')}`)
}
writeFileSync(join(root, 'dist', 'muster-agent.meta.json'), JSON.stringify(result.metafile))
console.log(`dist/muster-agent.mjs: ${(statSync(outfile).size / 1024 / 1024).toFixed(1)} MiB, ${Object.keys(result.metafile.inputs).length} modules`)
