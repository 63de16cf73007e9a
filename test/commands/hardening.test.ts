// Issue 8 (hardening) through the built CLI: input that is not a nodes file, names muster keeps as
// written, terminal escapes from the nodes file, and verbs that do not apply to __base__. Each
// refusal is checked for its exact message, its exit code and that nothing was written.
import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {spawnSync} from 'node:child_process'

import {UserError} from '../../src/errors.js'
import {readUserDataTemplate} from '../../src/stacks/context.js'
import {binRun, listFiles, makeTempDir, removeDir, runMuster} from '../support/cli.js'

const base = 'region: us-east-1\n  instance_type: m5.large\n  source_ami: ami-1ebb2077'

describe('hardening (issue 8)', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTempDir('muster-hardening-')
  })
  afterEach(() => removeDir(dir))

  describe('item 5: only regular files of a bounded size; aliases bounded by what they expand to', () => {
    const refusals: Array<[string, () => string, string]> = [
      ['a device', () => '/dev/zero', 'Error: nodes file /dev/zero is a device\n→ Point --nodes or MUSTER_NODES at a regular file.\n'],
      ['/dev/null', () => '/dev/null', 'Error: nodes file /dev/null is a device\n→ Point --nodes or MUSTER_NODES at a regular file.\n'],
      ['a directory', () => (mkdirSync(join(dir, 'conf')), 'conf'), 'Error: nodes file conf is a directory\n→ Point --nodes or MUSTER_NODES at a regular file.\n'],
      ['a pipe', () => (execFileSync('mkfifo', [join(dir, 'fifo')]), 'fifo'), 'Error: nodes file fifo is a pipe\n→ Point --nodes or MUSTER_NODES at a regular file.\n'],
      [
        'a file over 16 MiB',
        () => (writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(16 * 1024 * 1024)}\n`), 'big.yaml'),
        'Error: nodes file big.yaml is larger than 16 MiB, the most muster reads\n→ Split the fleet into several nodes files, or remove what the groups do not need.\n',
      ],
    ]
    it('refuses a kernel pseudo-file that reports size 0, and one whose read fails, as user errors', () => {
      for (const [path, message] of [
        ['/proc/self/status', 'Error: nodes file /proc/self/status reports a size of 0 but has content (a /proc or /sys file?)\n'],
        ['/proc/self/pagemap', 'Error: nodes file /proc/self/pagemap could not be read (EINVAL)\n'],
      ] as const) {
        const result = runMuster(['validate', '--nodes', path], {cwd: dir})
        expect(result.code).to.equal(1)
        expect(result.stderr).to.match(new RegExp(`^${message.replace(/[()?/.]/g, '\\$&')}`))
        expect(result.stderr).not.to.match(/bug/)
      }
    })

    it('leaves a directory named like a temp file alone, and still writes', () => {
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}, web: {}}))
      mkdirSync(join(dir, 'roles', '.web.json.999999.deadbeef.tmp'), {recursive: true})
      const result = runMuster(['generate'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(existsSync(join(dir, 'roles', 'web.json'))).to.equal(true)
      expect(existsSync(join(dir, 'roles', '.web.json.999999.deadbeef.tmp'))).to.equal(true)
    })

    for (const [what, make, message] of refusals) {
      it(`refuses ${what}, for every verb that reads it, and writes nothing`, () => {
        const path = make()
        const before = listFiles(dir)
        for (const verb of [['validate'], ['generate'], ['ls']]) {
          const result = runMuster([...verb, '--nodes', path], {cwd: dir, timeoutMs: 20_000})
          expect(result.code, `${verb.join(' ')}: ${result.stderr}`).to.equal(1)
          expect(result.stderr).to.equal(message)
          expect(result.stdout).to.equal('')
        }
        const json = runMuster(['validate', '--json', '--nodes', path], {cwd: dir, timeoutMs: 20_000})
        expect(JSON.parse(json.stdout)).to.deep.include({error: {message: message.split('\n')[0]?.replace('Error: ', ''), hint: message.split('\n')[1]?.replace('→ ', ''), kind: 'user'}})
        expect(listFiles(dir)).to.deep.equal(before)
      })
    }

    it('a symlink to a regular file is read like the file', () => {
      writeFileSync(join(dir, 'real.yaml'), `__base__:\n  ${base}\nweb: {}\n`)
      symlinkSync(join(dir, 'real.yaml'), join(dir, 'nodes.yaml'))
      const result = runMuster(['validate'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
    })

    it('checks aliases in linear time: 20,000 aliases in an 80 KB file validate in well under 2 s, and keep their values', () => {
      const aliases = Array.from({length: 20_000}, () => '*a').join(', ')
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb:\n  default_attributes:\n    a: &a x\n    l: [${aliases}]\n`)
      const started = Date.now()
      const result = runMuster(['show', 'web', '--json'], {cwd: dir})
      const took = Date.now() - started
      expect(result.code, result.stderr).to.equal(0)
      const shown = JSON.parse(result.stdout) as {default_attributes: {l: string[]}}
      expect(shown.default_attributes.l).to.have.length(20_000)
      expect(new Set(shown.default_attributes.l)).to.deep.equal(new Set(['x']))
      expect(took).to.be.below(2000)
    })

    it('accepts 120 aliases of one run list, and the groups get it', () => {
      const recipes = Array.from({length: 30}, (_, i) => `    - recipe[cookbook${i}]`).join('\n')
      const groups = Array.from({length: 120}, (_, i) => `g${i}:\n  run_list: *runlist`).join('\n')
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb:\n  run_list: &runlist\n${recipes}\n${groups}\n`)
      const result = runMuster(['validate'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).to.match(/^nodes\.yaml: ok — 121 groups/)
      const shown = JSON.parse(runMuster(['show', 'g119', '--json'], {cwd: dir}).stdout) as {run_list: string[]}
      expect(shown.run_list).to.have.length(30)
      expect(shown.run_list[29]).to.equal('recipe[cookbook29::default]')
    })
  })

  describe('item 6: control characters from the nodes file never reach the terminal raw', () => {
    const hostile = 'ok\u001b]0;pwned\u0007\u001b[31mred\u009b2J\u202egnp.exe\r'
    beforeEach(() => {
      const nodes = {__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}, web: {description: hostile, default_attributes: {[`k\u001b[2J`]: `v\u0008`}}}
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify(nodes))
    })
    // eslint-disable-next-line no-control-regex
    const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

    it('ls shows them as visible escapes', () => {
      const result = runMuster(['ls'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).not.to.match(CONTROL)
      expect(result.stdout.split('\n')[1]).to.match(/ ok\\x1b\]0;pwned\\x07\\x1b\[31mred\\x9b2J\\u202egnp\.exe\\x0d$/)
    })

    it('show shows them as visible escapes, in values and keys', () => {
      const result = runMuster(['show', 'web'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).not.to.match(CONTROL)
      expect(result.stdout).to.contain('description: ok\\x1b]0;pwned\\x07\\x1b[31mred\\x9b2J\\u202egnp.exe\\x0d\n')
      expect(result.stdout).to.contain('  k\\x1b[2J: v\\x08\n')
    })

    it('the diffs of role:update and generate --check show them as visible escapes too', () => {
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}, web: {description: 'a'}}))
      expect(runMuster(['generate'], {cwd: dir}).code).to.equal(0)
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}, web: {description: '\u009b2J\u009d0;owned\u009c\u202eb\u007f'}}))
      const check = runMuster(['generate', '--check'], {cwd: dir})
      expect(check.code).to.equal(1)
      expect(check.stdout + check.stderr).not.to.match(CONTROL)
      expect(check.stdout + check.stderr).to.contain('\\x9b2J\\x9d0;owned\\x9c\\u202eb\\x7f')
      const update = runMuster(['role:update', 'web'], {cwd: dir})
      expect(update.code, update.stderr).to.equal(0)
      expect(update.stdout).not.to.match(CONTROL)
      expect(update.stdout).to.contain('\\x9b2J')
    })

    it('--json keeps the text exactly', () => {
      const shown = JSON.parse(runMuster(['show', 'web', '--json'], {cwd: dir}).stdout) as {description: string; default_attributes: Record<string, string>}
      expect(shown.description).to.equal(hostile)
      expect(shown.default_attributes).to.deep.equal({[`k\u001b[2J`]: `v\u0008`})
      const rows = JSON.parse(runMuster(['ls', '--json'], {cwd: dir}).stdout) as Array<{description: string}>
      expect(rows[0]?.description).to.equal(hostile)
    })

    it('an error that quotes a key from the file does not carry its escapes either', () => {
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}, web: {'x\u001b[2J': 1}}))
      const result = runMuster(['validate'], {cwd: dir})
      expect(result.code).to.equal(1)
      expect(result.stderr).not.to.match(CONTROL)
      expect(result.stderr).to.contain('web.x\\x1b[2J: unknown key "x\\x1b[2J"')
    })
  })

  describe('item 12: keys that look like numbers keep their text', () => {
    it('0x10, 007, 1e3, true and null stay as written, as group names and attribute names', () => {
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\n0x10:\n  default_attributes: {1e3: a, 007: b, true: c, null: d, 0o17: e}\n007: {}\n`)
      const rows = JSON.parse(runMuster(['ls', '--json'], {cwd: dir}).stdout) as Array<{name: string}>
      expect(rows.map((r) => r.name)).to.deep.equal(['0x10', '007'])
      const shown = JSON.parse(runMuster(['show', '0x10', '--json'], {cwd: dir}).stdout) as {default_attributes: Record<string, string>}
      expect(shown.default_attributes).to.deep.equal({'1e3': 'a', '007': 'b', true: 'c', null: 'd', '0o17': 'e'})
      expect(runMuster(['role:create', '007'], {cwd: dir}).code).to.equal(0)
      expect(listFiles(dir)).to.deep.equal(['nodes.yaml', 'roles/007.json'])
      expect(runMuster(['show', '7'], {cwd: dir}).stderr).to.contain('no group "7" in nodes.yaml')
    })

    it('duplicates are found by text: 007 and 7, 0x10 and 16, 1.1 and 1.10 are different keys', () => {
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\n007: {}\n7:\n  default_attributes: {1.1: a, 1.10: b, 0x10: c, 16: d}\n`)
      const result = runMuster(['validate'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      const shown = JSON.parse(runMuster(['show', '7', '--json'], {cwd: dir}).stdout) as {default_attributes: Record<string, string>}
      expect(shown.default_attributes).to.deep.equal({'1.1': 'a', '1.10': 'b', '0x10': 'c', '16': 'd'})
    })
  })

  describe('item 10: only real nesting counts towards the depth limit', () => {
    it('a plain scalar full of [ and { is text, not nesting', () => {
      const brackets = '[ { '.repeat(200)
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb:\n  default_attributes:\n    note: x ${brackets}\n    other: a [ { # comment [[[\n    list: &l [1, [2]]\n    again: *l\n`)
      const result = runMuster(['show', 'web', '--json'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect((JSON.parse(result.stdout) as {default_attributes: unknown}).default_attributes).to.deep.equal({note: `x ${brackets.trim()}`, other: 'a [ {', list: [1, [2]], again: [1, [2]]})
    })
  })

  describe('item 14: numbers keep their value or are refused', () => {
    it('!!float 1 and !!int 3 are numbers; 5e-324, 0e5 and 9007199254740991.0 keep their value', () => {
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb:\n  default_attributes:\n    e: !!float 1\n    j: !!int 3\n    h: 5e-324\n    g: 0e5\n    k: 9007199254740991.0\n`)
      const result = runMuster(['show', 'web', '--json'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect((JSON.parse(result.stdout) as {default_attributes: unknown}).default_attributes).to.deep.equal({e: 1, j: 3, h: 5e-324, g: 0, k: 9_007_199_254_740_991})
    })
  })

  describe('item 16: a UTF-8 byte-order mark is accepted in JSON and YAML', () => {
    for (const name of ['nodes.json', 'nodes.yaml']) {
      it(name, () => {
        const text = name.endsWith('.json')
          ? JSON.stringify({__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-1ebb2077'}, web: {description: 'café'}}, null, 2)
          : `__base__:\n  ${base}\nweb:\n  description: café\n`
        writeFileSync(join(dir, name), `\uFEFF${text}`)
        const result = runMuster(['show', 'web', '--json'], {cwd: dir})
        expect(result.code, result.stderr).to.equal(0)
        expect((JSON.parse(result.stdout) as {description: string}).description).to.equal('café')
      })
    }
  })

  describe('item 17: --nodes with an empty path', () => {
    it('is refused, for every verb, and nothing is written', () => {
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb: {}\n`)
      for (const verb of [['validate'], ['generate'], ['role:create', 'web'], ['ls'], ['show', 'web']]) {
        const result = runMuster([...verb, '--nodes', ''], {cwd: dir})
        expect(result.code, verb.join(' ')).to.equal(1)
        expect(result.stderr).to.equal(
          "Error: --nodes was given an empty path\n→ Give the nodes file's path (--nodes nodes.yaml), or leave --nodes out to use nodes.json or nodes.yaml here.\n",
        )
        expect(result.stdout).to.equal('')
      }
      const json = runMuster(['validate', '--json', '--nodes='], {cwd: dir})
      expect(json.code).to.equal(1)
      expect((JSON.parse(json.stdout) as {error: {kind: string; message: string}}).error).to.deep.include({kind: 'user', message: '--nodes was given an empty path'})
      expect(listFiles(dir)).to.deep.equal(['nodes.yaml'])
    })

    it('an empty MUSTER_NODES means unset (documented): nodes.yaml here is used; a non-empty one is a path', () => {
      writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb: {}\n`)
      const empty = runMuster(['validate'], {cwd: dir, env: {MUSTER_NODES: ''}})
      expect(empty.code, empty.stderr).to.equal(0)
      expect(empty.stdout).to.match(/^nodes\.yaml: ok/)
      const missing = runMuster(['validate'], {cwd: dir, env: {MUSTER_NODES: 'x.yaml'}})
      expect(missing.code).to.equal(1)
      expect(missing.stderr).to.equal('Error: nodes file x.yaml does not exist\n→ Check the path given with --nodes or MUSTER_NODES.\n')
    })
  })

  describe('item 19: __base__ is not a node group', () => {
    beforeEach(() => writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb: {}\n`))
    const hint = "→ Every group inherits __base__'s settings: name a group instead (muster ls lists them), or leave GROUP out for all of them. To bake the base image, run: muster packer:create __base__\n"

    for (const [verb, what] of [
      ['role:create', 'role'],
      ['role:update', 'role'],
      ['roles:update', 'role'],
      ['generate', 'role'],
      ['autoscale:create', 'Auto Scaling dna'],
    ] as const) {
      it(`${verb} __base__ is refused with a hint, and writes nothing`, () => {
        const result = runMuster([verb, '__base__'], {cwd: dir})
        expect(result.code).to.equal(1)
        expect(result.stderr).to.equal(`Error: __base__ is not a node group, so it has no ${what} of its own; nothing was written\n${hint}`)
        expect(listFiles(dir)).to.deep.equal(['nodes.yaml'])
      })
    }

    for (const [argv, what, done] of [
      [['autoscale:run', '__base__'], 'Auto Scaling group', 'nothing was changed'],
      [['autoscale:update', '__base__'], 'Auto Scaling group', 'nothing was changed'],
      [['instance:create', '__base__', '--name', 'one'], 'instances', 'nothing was launched'],
      [['up', '__base__'], 'nodes', 'nothing was changed'],
      [['preview', '__base__'], 'nodes', 'nothing was changed'],
      [['destroy', '__base__'], 'nodes', 'nothing was destroyed (muster packer:delete __base__ retires the base image)'],
    ] as const) {
      it(`${argv.join(' ')} is refused with the same hint (exit 1), before touching AWS or state, and writes nothing`, () => {
        const result = runMuster(argv[0] === 'preview' ? argv : [...argv, '--yes'], {cwd: dir, env: {AWS_ENDPOINT_URL: 'http://127.0.0.1:9', PULUMI_BACKEND_URL: 'file:///nonexistent-muster-test'}})
        expect(result.code, result.stderr).to.equal(1)
        expect(result.stderr).to.equal(`Error: __base__ is not a node group, so it has no ${what} of its own; ${done}\n${hint}`)
        expect(listFiles(dir)).to.deep.equal(['nodes.yaml'])
      })
    }

    it('packer:create __base__ still makes the base image template (and the role it converges)', () => {
      const result = runMuster(['packer:create', '__base__'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(listFiles(dir)).to.deep.equal(['nodes.yaml', 'packer/__base__.pkr.json', 'roles/__base__.json', 'templates/muster-agent.service', 'templates/muster-converge.sh', 'templates/packer/provision.sh'])
      expect(readFileSync(join(dir, 'packer/__base__.pkr.json'), 'utf8')).to.contain('"ami_name": "__base__ ${local.timestamp}"')
    })

    it('role:create with no group still writes every node group and not __base__', () => {
      expect(runMuster(['role:create'], {cwd: dir}).code).to.equal(0)
      expect(listFiles(dir)).to.deep.equal(['nodes.yaml', 'roles/web.json'])
    })
  })
  describe('items 3, 4, 7, 8, 9: the files muster reads and writes', () => {
    const autoscaled = `__base__:\n  ${base}\nweb:\n  autoscale: {timeout: 60, node_min: 1, node_max: 2}\n`
    beforeEach(() => writeFileSync(join(dir, 'nodes.yaml'), autoscaled))

    it('item 3: a symlink out of the project is reported and never read: not by --check, not by role:update, and nothing is written', () => {
      const outside = makeTempDir('muster-secret-')
      try {
        writeFileSync(join(outside, 'credentials'), 'aws_secret_access_key = SECRET\n')
        mkdirSync(join(dir, 'roles'))
        symlinkSync(join(outside, 'credentials'), join(dir, 'roles', 'web.json'))
        const message = `Error: roles/web.json is a symlink to ${join(outside, 'credentials')}, outside the project; muster neither reads nor writes artifacts through it, so nothing was written\n→ Replace the symlink with a regular file (or remove it) and run the command again.\n`
        for (const verb of [['generate', '--check'], ['role:update', 'web'], ['role:update', 'web', '--check'], ['generate']]) {
          const result = runMuster(verb, {cwd: dir})
          expect(result.code, verb.join(' ')).to.equal(1)
          expect(result.stderr, verb.join(' ')).to.equal(message)
          expect(result.stdout, verb.join(' ')).not.to.contain('SECRET')
        }
        expect(readFileSync(join(outside, 'credentials'), 'utf8')).to.equal('aws_secret_access_key = SECRET\n')
        expect(listFiles(dir)).to.deep.equal(['nodes.yaml', 'roles/web.json'])
        // A directory on the way counts too.
        removeDir(join(dir, 'roles'))
        symlinkSync(outside, join(dir, 'roles'))
        const viaDir = runMuster(['role:create', 'web'], {cwd: dir})
        expect(viaDir.code).to.equal(1)
        expect(viaDir.stderr).to.contain(`roles is a symlink to ${outside}, outside the project`)
        expect(existsSync(join(outside, 'web.json'))).to.equal(false)
      } finally {
        removeDir(outside)
      }
    })

    it('item 3: packer:delete and instance:create refuse a symlinked packer/ or dna/instances out of the project before touching AWS or files', () => {
      const outside = makeTempDir('muster-out-')
      try {
        writeFileSync(join(outside, 'web.pkr.json'), '{}\n')
        symlinkSync(outside, join(dir, 'packer'))
        for (const verb of [['packer:delete', 'web', '--yes'], ['packer:delete', 'web', '--dry-run']]) {
          const result = runMuster(verb, {cwd: dir, env: {AWS_ENDPOINT_URL: 'http://127.0.0.1:9'}})
          expect(result.code, verb.join(' ')).to.equal(1)
          expect(result.stderr, verb.join(' ')).to.equal(
            `Error: packer is a symlink to ${outside}, outside the project; muster deletes nothing through it, so nothing was deleted\n→ Replace the symlink with a regular file (or remove it) and run the command again.\n`,
          )
        }
        expect(readFileSync(join(outside, 'web.pkr.json'), 'utf8')).to.equal('{}\n')
        mkdirSync(join(dir, 'dna'))
        symlinkSync(outside, join(dir, 'dna', 'instances'))
        const instance = runMuster(['instance:create', 'web', '--name', 'one', '--yes'], {cwd: dir, env: {AWS_ENDPOINT_URL: 'http://127.0.0.1:9'}})
        expect(instance.code).to.equal(1)
        expect(instance.stderr).to.equal(
          `Error: dna/instances is a symlink to ${outside}, outside the project; muster writes no dna through it, so nothing was launched or written\n→ Replace the symlink with a regular file (or remove it) and run the command again.\n`,
        )
        expect(listFiles(outside)).to.deep.equal(['web.pkr.json'])
      } finally {
        removeDir(outside)
      }
    })

    it('item 3: a symlink inside the project is fine', () => {
      mkdirSync(join(dir, 'generated'))
      symlinkSync('generated', join(dir, 'roles'))
      const result = runMuster(['role:create', 'web'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(existsSync(join(dir, 'generated', 'web.json'))).to.equal(true)
    })

    it('item 4: a rewrite keeps the file\'s mode (0600 and 0640 stay, never widened)', () => {
      expect(runMuster(['generate'], {cwd: dir}).code).to.equal(0)
      chmodSync(join(dir, 'roles', 'web.json'), 0o600)
      chmodSync(join(dir, 'packer', 'web.pkr.json'), 0o640)
      writeFileSync(join(dir, 'nodes.yaml'), autoscaled.replace('web:\n', 'web:\n  description: changed\n'))
      const result = runMuster(['generate'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).to.contain('updated    roles/web.json')
      expect(statSync(join(dir, 'roles', 'web.json')).mode & 0o777).to.equal(0o600)
      expect(statSync(join(dir, 'packer', 'web.pkr.json')).mode & 0o777).to.equal(0o640)
    })

    it('item 7: EISDIR names the user\'s path, is a user error (also with --json), and nothing is written', () => {
      mkdirSync(join(dir, 'packer', 'web.pkr.json'), {recursive: true})
      const result = runMuster(['generate'], {cwd: dir})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.equal('Error: packer/web.pkr.json is a directory; nothing was written\n→ Move the directory away; muster writes a file there.\n')
      const json = runMuster(['generate', '--json'], {cwd: dir})
      expect(JSON.parse(json.stdout)).to.deep.equal({error: {message: 'packer/web.pkr.json is a directory; nothing was written', hint: 'Move the directory away; muster writes a file there.', kind: 'user'}})
      expect(listFiles(dir)).to.deep.equal(['nodes.yaml'])
    })

    for (const [template, verb] of [
      ['templates/packer/provision.sh', ['generate']],
      ['templates/packer/provision.sh', ['packer:create', 'web']],
    ] as const) {
      it(`item 7: ${template} unreadable (EISDIR, EACCES) is a user error naming it for ${verb.join(' ')} (also with --json), and nothing is written`, () => {
        const hint = "It is yours to change: make it a readable file (or remove it to use muster's default), then run the command again."
        mkdirSync(join(dir, template), {recursive: true})
        const env = {AWS_ENDPOINT_URL: 'http://127.0.0.1:9', PULUMI_CONFIG_PASSPHRASE: 'x'}
        const result = runMuster(verb, {cwd: dir, env})
        expect(result.code, result.stderr).to.equal(1)
        expect(result.stderr).to.equal(`Error: ${template} is a directory; muster reads it, so nothing was done\n→ ${hint}\n`)
        const json = runMuster([...verb, '--json'], {cwd: dir, env})
        expect(JSON.parse(json.stdout)).to.deep.equal({error: {message: `${template} is a directory; muster reads it, so nothing was done`, hint, kind: 'user'}})
        removeDir(join(dir, template))
        if (process.getuid?.() !== 0) {
          writeFileSync(join(dir, template), 'echo\n')
          chmodSync(join(dir, template), 0o000)
          const denied = runMuster(verb, {cwd: dir, env})
          expect(denied.code).to.equal(1)
          expect(denied.stderr).to.equal(`Error: ${template} is not accessible: permission denied; muster reads it, so nothing was done\n→ ${hint}\n`)
          chmodSync(join(dir, template), 0o600)
          removeDir(join(dir, template))
        }
        expect(listFiles(dir).filter((f) => !f.startsWith('templates/'))).to.deep.equal(['nodes.yaml'])
      })
    }

    it('item 7: templates/user-data.sh unreadable is a user error naming it (what up, preview and instance:create read)', () => {
      mkdirSync(join(dir, 'templates', 'user-data.sh'), {recursive: true})
      expect(() => readUserDataTemplate(dir))
        .to.throw(UserError, 'templates/user-data.sh is a directory; muster reads it, so nothing was done')
        .with.property('hint', "It is yours to change: make it a readable file (or remove it to use muster's default), then run the command again.")
    })

    it('items 7 and 8: a file where a folder must be (EEXIST/ENOTDIR) is a user error that says what was written and what was not', () => {
      writeFileSync(join(dir, 'packer'), 'not a folder\n')
      const result = runMuster(['generate'], {cwd: dir})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.equal(
        'Error: packer/web.pkr.json has a file where muster needs a directory; written before it: roles/web.json, dna/asg/web.json; not written: packer/web.pkr.json, templates/packer/provision.sh, templates/muster-agent.service, templates/muster-converge.sh\n' +
          '→ Move that file away; muster creates the directories it writes into.\n',
      )
      expect(result.stderr).not.to.match(/\.tmp|looks like a bug/)
      expect(listFiles(dir)).to.deep.equal(['dna/asg/web.json', 'nodes.yaml', 'packer', 'roles/web.json'])
    })

    it('item 7: ENOSPC and EPIPE on stdout are user errors, with no stack trace', () => {
      const devFull = spawnSync('sh', ['-c', `"${process.execPath}" "${binRun}" ls --json > /dev/full`], {cwd: dir, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
      expect(devFull.status).to.equal(1)
      expect(devFull.stderr).to.equal('Error: writing to stdout failed (ENOSPC) before muster finished writing its output\n→ Read the whole output, or redirect it to a file with room for it.\n')
      const many = Array.from({length: 3000}, (_, i) => `g${i}: {description: ${'x'.repeat(60)}}`).join('\n')
      writeFileSync(join(dir, 'nodes.yaml'), `${autoscaled}${many}\n`)
      const piped = spawnSync('sh', ['-c', `"${process.execPath}" "${binRun}" ls | head -c 10 >/dev/null`], {cwd: dir, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
      expect(piped.stderr).to.equal('Error: the reader of stdout closed it (EPIPE) before muster finished writing its output\n→ Read the whole output, or redirect it to a file with room for it.\n')
    })

    it('item 9: stale temp files of muster\'s naming from a killed run are cleaned up; others are left alone', () => {
      mkdirSync(join(dir, 'roles'))
      // pid 2^22+1 is above Linux's pid_max default: no such process.
      const stale = ['.web.json.4194305.0a1b2c3d.tmp', '.web.json.4194305.1700000000000.tmp']
      const kept = ['.web.json.tmp', 'notes.tmp', `.web.json.${process.pid}.0a1b2c3d.tmp`]
      for (const name of [...stale, ...kept]) writeFileSync(join(dir, 'roles', name), 'partial')
      const result = runMuster(['role:create', 'web'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(listFiles(join(dir, 'roles'))).to.deep.equal([...kept, 'web.json'].sort())
    })

    it('item 9: a temp file older than 10 minutes is stale whatever its pid (1 in a container, or a live pid from another boot); a fresh one of a live pid is kept', () => {
      mkdirSync(join(dir, 'roles'))
      const old = ['.web.json.1.0a1b2c3d.tmp', `.web.json.${process.pid}.0a1b2c3d.tmp`, '.db.json.1.1700000000000.tmp']
      const fresh = '.api.json.1.0a1b2c3d.tmp'
      for (const name of [...old, fresh]) writeFileSync(join(dir, 'roles', name), 'partial')
      const hourAgo = new Date(Date.now() - 60 * 60 * 1000)
      for (const name of old) utimesSync(join(dir, 'roles', name), hourAgo, hourAgo)
      const result = runMuster(['role:create', 'web'], {cwd: dir})
      expect(result.code, result.stderr).to.equal(0)
      expect(listFiles(join(dir, 'roles'))).to.deep.equal([fresh, 'web.json'].sort())
    })
  })
  describe('item 11: generate GROUP makes what the group has', () => {
    beforeEach(() =>
      writeFileSync(
        join(dir, 'nodes.yaml'),
        `__base__:\n  ${base}\nfleet:\n  autoscale: {timeout: 60, node_min: 1, node_max: 2}\n  packer: false\nsingle: {}\nboth:\n  autoscale: {timeout: 60, node_min: 1, node_max: 2}\n`,
      ),
    )
    const cases: Array<[string, string[]]> = [
      ['fleet', ['dna/asg/fleet.json', 'roles/fleet.json']],
      ['single', ['packer/single.pkr.json', 'roles/single.json', 'templates/muster-agent.service', 'templates/muster-converge.sh', 'templates/packer/provision.sh']],
      ['both', ['dna/asg/both.json', 'packer/both.pkr.json', 'roles/both.json', 'templates/muster-agent.service', 'templates/muster-converge.sh', 'templates/packer/provision.sh']],
    ]
    for (const [group, files] of cases) {
      it(`generate ${group} writes ${files.join(', ')}; --check then passes`, () => {
        const result = runMuster(['generate', group], {cwd: dir})
        expect(result.code, result.stderr).to.equal(0)
        expect(listFiles(dir)).to.deep.equal(['nodes.yaml', ...files].sort())
        expect(runMuster(['generate', group, '--check'], {cwd: dir}).code).to.equal(0)
      })
    }

    it('a verb of one kind still says why the group has none', () => {
      expect(runMuster(['autoscale:create', 'single'], {cwd: dir}).stderr).to.contain('group "single" has autoscale: false')
      expect(runMuster(['packer:create', 'fleet'], {cwd: dir}).stderr).to.contain('group fleet has packer: false, so it is never baked')
      expect(listFiles(dir)).to.deep.equal(['nodes.yaml'])
    })
  })

  describe('item 20: every topic has its own summary', () => {
    it('muster --help lists each topic once, with different summaries', () => {
      const help = runMuster(['--help'], {cwd: dir})
      const topics = (help.stdout.split('TOPICS\n')[1] ?? '').split('\n\n')[0] ?? ''
      const rows = topics.split(/\n(?=  \S)/).map((row) => row.trim().replace(/\s+/g, ' '))
      const names = rows.map((r) => r.split(' ')[0])
      // Each topic once, in order; the hidden alias "roles" never shows. (New topics join the list.)
      expect(names).to.include.members(['autoscale', 'instance', 'node', 'packer', 'registry', 'role', 'service'])
      expect(names).to.deep.equal([...new Set(names)].sort())
      expect(names).not.to.include('roles')
      expect(new Set(rows.map((r) => r.split(' ').slice(1).join(' '))).size).to.equal(rows.length)
      expect(rows.find((r) => r.startsWith('packer'))).to.equal('packer Images: Packer templates, baking AMIs and retiring old ones.')
    })
  })
  describe('item 18: misspelled verbs get a did-you-mean and a usage exit code (64), not preview\'s 2', () => {
    const cases: Array<[string[], string]> = [
      [['valdate'], 'Error: "valdate" is not a muster command; did you mean "validate"?\n→ Run "muster help" for the list of commands, or "muster help validate" for that one.\n'],
      [['role:craete', 'web'], 'Error: "role:craete" is not a muster command; did you mean "role:create"?\n→ Run "muster help" for the list of commands, or "muster help role:create" for that one.\n'],
      [['packer:cretae'], 'Error: "packer:cretae" is not a muster command; did you mean "packer:create"?\n→ Run "muster help" for the list of commands, or "muster help packer:create" for that one.\n'],
      [['zzzzzzzz'], 'Error: "zzzzzzzz" is not a muster command\n→ Run "muster help" for the list of commands.\n'],
      [['packer', 'craete', 'web'], 'Error: "packer craete" is not a muster command; did you mean "packer:create"?\n→ Run "muster help" for the list of commands, or "muster help packer:create" for that one.\n'],
      [['packer', 'create', 'web'], 'Error: "packer create" is not a muster command; did you mean "packer:create"?\n→ Run "muster help" for the list of commands, or "muster help packer:create" for that one.\n'],
      [['role', 'zzzzzzzz'], 'Error: "role zzzzzzzz" is not a muster command\n→ Run "muster help" for the list of commands.\n'],
      [['rol'], 'Error: "rol" is not a muster command; did you mean "role"?\n→ Run "muster help" for the list of commands, or "muster help role" for that one.\n'],
      [['pakcer'], 'Error: "pakcer" is not a muster command; did you mean "packer"?\n→ Run "muster help" for the list of commands, or "muster help packer" for that one.\n'],
      [['pakcer', 'craete', 'web'], 'Error: "pakcer" is not a muster command; did you mean "packer:create"?\n→ Run "muster help" for the list of commands, or "muster help packer:create" for that one.\n'],
      [['help', 'valdate'], 'Error: "valdate" is not a muster command or topic; did you mean "validate"?\n→ Run "muster help" for the list of commands.\n'],
    ]
    for (const [argv, message] of cases) {
      it(`muster ${argv.join(' ')}`, () => {
        writeFileSync(join(dir, 'nodes.yaml'), `__base__:\n  ${base}\nweb: {}\n`)
        const result = runMuster(argv, {cwd: dir})
        expect(result.code).to.equal(64)
        expect(result.stderr).to.equal(message)
        expect(result.stdout).to.equal('')
        expect(listFiles(dir)).to.deep.equal(['nodes.yaml'])
      })
    }

    it('muster help VERB and muster help TOPIC print the help and exit 0', () => {
      const verb = runMuster(['help', 'role:create'], {cwd: dir})
      expect(verb.code).to.equal(0)
      expect(verb.stdout).to.contain('USAGE\n  $ muster role:create [GROUP]')
      for (const argv of [['packer'], ['packer', '--help']]) {
        const bare = runMuster(argv, {cwd: dir})
        expect(bare.code, argv.join(' ')).to.equal(0)
        expect(bare.stdout).to.match(/^Images: Packer templates, baking AMIs and retiring old ones\./)
      }
      const topic = runMuster(['help', 'packer'], {cwd: dir})
      expect(topic.code).to.equal(0)
      expect(topic.stdout).to.match(/^Images: Packer templates, baking AMIs and retiring old ones\./)
    })
  })
})
