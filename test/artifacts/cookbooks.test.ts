import {expect} from 'chai'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {cookbookClosure, cookbookOfEntry, cookbooksHash, type CookbookTree, parseMetadataJson, parseMetadataRb, readCookbookTree} from '../../src/artifacts/cookbooks.js'

describe('cookbooks a run list uses', () => {
  it('reads the cookbook of a run list entry; a role names none', () => {
    expect(cookbookOfEntry('recipe[web]')).to.equal('web')
    expect(cookbookOfEntry('recipe[apache2::mod_ssl]')).to.equal('apache2')
    expect(cookbookOfEntry('recipe[apache2::mod_ssl@1.2.0]')).to.equal('apache2')
    expect(cookbookOfEntry('ntp::default')).to.equal('ntp')
    expect(cookbookOfEntry('role[db]')).to.equal(undefined)
  })

  it('reads depends and name from metadata.rb (comments ignored) and metadata.json', () => {
    const rb = `name 'web'\nversion '1.0.0'\ndepends 'nginx'\ndepends "apt", "~> 7.0"\ndepends('users')\n# depends 'commented'\n  depends 'openssl' # trailing\n`
    expect(parseMetadataRb(rb)).to.deep.equal({name: 'web', depends: ['nginx', 'apt', 'users', 'openssl']})
    expect(parseMetadataJson('{"name": "db", "dependencies": {"postgresql": ">= 0.0.0", "apt": "~> 7"}}')).to.deep.equal({name: 'db', depends: ['postgresql', 'apt']})
    expect(parseMetadataJson('not json')).to.deep.equal({depends: []})
  })

  const tree: CookbookTree = {
    looseFiles: [['README.md', 'cookbooks']],
    cookbooks: [
      {dir: 'web', depends: ['nginx'], files: [['metadata.rb', "depends 'nginx'"], ['recipes/default.rb', 'include_recipe "nginx"']]},
      {dir: 'nginx', depends: ['apt', 'web'], files: [['recipes/default.rb', 'package "nginx"']]},
      {dir: 'apt', depends: [], files: [['recipes/default.rb', 'execute "apt-get update"']]},
      {dir: 'db', depends: ['apt'], files: [['recipes/default.rb', 'package "postgresql"']]},
      {dir: 'unused', depends: [], files: [['recipes/default.rb', 'log "x"']]},
      // Chef resolves a cookbook by its metadata name, whatever its folder is called.
      {dir: 'users-cookbook', metadataName: 'users', depends: [], files: [['recipes/default.rb', 'user "deploy"']]},
    ],
  }

  it('follows depends transitively (a cycle included) and notes what the tree lacks', () => {
    expect(cookbookClosure(['recipe[web]'], tree)).to.deep.equal({all: false, dirs: ['apt', 'nginx', 'web'], missing: []})
    expect(cookbookClosure(['recipe[db::server]', 'recipe[users]', 'recipe[ghost]'], tree)).to.deep.equal({all: false, dirs: ['apt', 'db', 'users-cookbook'], missing: ['ghost']})
    expect(cookbookClosure([], tree)).to.deep.equal({all: false, dirs: [], missing: []})
    // A role's run list is not in the nodes file: every cookbook counts.
    expect(cookbookClosure(['recipe[web]', 'role[db]'], tree).all).to.equal(true)
  })

  it("the hash changes with a cookbook in the closure (a dependency's too), and not with one outside it", () => {
    const hash = (t: CookbookTree, runList = ['recipe[web]']): string => cookbooksHash(runList, t)
    const edit = (dir: string): CookbookTree => ({...tree, cookbooks: tree.cookbooks.map((c) => (c.dir === dir ? {...c, files: [...c.files, ['recipes/extra.rb', 'log "new"'] as [string, string]]} : c))})
    expect(hash(tree)).to.match(/^[0-9a-f]{16}$/)
    expect(hash(edit('unused'))).to.equal(hash(tree))
    expect(hash(edit('db'))).to.equal(hash(tree))
    expect(hash(edit('apt')), 'a transitive dependency').to.not.equal(hash(tree))
    expect(hash(edit('web'))).to.not.equal(hash(tree))
    expect(hash({...tree, looseFiles: []}), 'a loose file is uploaded with the rest').to.not.equal(hash(tree))
    expect(hash(tree, ['recipe[web]', 'recipe[ghost]']), 'a missing cookbook is hashed by name').to.not.equal(hash(tree))
    expect(hash(tree, ['recipe[db]'])).to.not.equal(hash(tree))
  })

  describe('readCookbookTree', () => {
    let dir: string
    const write = (path: string, content: string): void => {
      mkdirSync(dirname(join(dir, path)), {recursive: true})
      writeFileSync(join(dir, path), content)
    }
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'muster-cookbooks-'))
    })
    afterEach(() => rmSync(dir, {recursive: true, force: true}))

    it('reads each cookbook folder with its files and merged metadata; no folder is an empty tree', () => {
      write('README.md', 'hi')
      write('web/metadata.rb', "name 'web'\ndepends 'nginx'\n")
      write('web/metadata.json', '{"dependencies": {"apt": ">= 0", "nginx": ">= 0"}}')
      write('web/recipes/default.rb', 'package "x"')
      write('nginx/recipes/default.rb', 'package "nginx"')
      const read = readCookbookTree(dir)
      expect(read.looseFiles).to.deep.equal([['README.md', 'hi']])
      expect(read.cookbooks.map((c) => [c.dir, c.metadataName, c.depends, c.files.map(([p]) => p)])).to.deep.equal([
        ['nginx', undefined, [], ['recipes/default.rb']],
        ['web', 'web', ['nginx', 'apt'], ['metadata.json', 'metadata.rb', 'recipes/default.rb']],
      ])
      expect(readCookbookTree(join(dir, 'nope'))).to.deep.equal({cookbooks: [], looseFiles: []})
    })
  })
})
