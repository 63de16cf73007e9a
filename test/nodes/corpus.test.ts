// The malformed corpus: every file under test/fixtures/malformed is a nodes file with one problem
// (a few with several, to prove all are reported at once). For each, the built CLI must exit
// non-zero, name every place as FILE:LINE:COLUMN and key path with what was expected, print no
// stack trace, give a JSON error under --json, and write nothing at all.
//
// The LINE:COLUMN numbers below were counted by hand in the fixture files (1-based; a value's place
// is its first character, a key's place its opening quote or first letter).
import {spawn} from 'node:child_process'
import {copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {extname, join} from 'node:path'

import {expect} from 'chai'

import {binRun, listFiles, makeTempDir, removeDir, repoRoot, type CliResult} from '../support/cli.js'

const corpusDir = join(repoRoot, 'test', 'fixtures', 'malformed')

/** [LINE:COLUMN, key path as printed, ...fragments of what was expected]. */
type Problem = [string, string, ...string[]]
interface Case {
  file: string
  problems: Problem[]
}

const cases: Case[] = [
  {file: 'json-autoscale-max-not-integer.json', problems: [['9:61', 'web.autoscale.node_max', 'expected a whole number']]},
  {file: 'json-autoscale-min-gt-max.json', problems: [['11:19', 'web.autoscale.node_min', 'expected node_min ≤ node_max']]},
  {file: 'json-autoscale-missing-node-max.json', problems: [['9:5', 'web.autoscale.node_max', 'missing key "node_max": expected a whole number']]},
  {file: 'json-autoscale-negative-min.json', problems: [['9:47', 'web.autoscale.node_min', 'expected a whole number ≥ 0']]},
  {file: 'json-autoscale-timeout-zero.json', problems: [['9:30', 'web.autoscale.timeout', 'expected a number of seconds greater than 0']]},
  {file: 'json-autoscale-true.json', problems: [['9:18', 'web.autoscale', 'expected false or a dict {timeout, node_min, node_max}']]},
  {file: 'json-comment.json', problems: [['2:3', '(top level)', 'comments are not allowed in JSON']]},
  {file: 'json-default-attributes-list.json', problems: [['9:27', 'web.default_attributes', 'expected a dict of Chef attributes']]},
  {file: 'json-depends-on-bad-name.json', problems: [['8:20', 'web.depends_on[0]', 'expected a service name of letters, digits, "_", "." and "-" only, got string "api/v1"']]},
  {file: 'json-depends-on-string.json', problems: [['8:19', 'web.depends_on', 'expected a list of service names, e.g. ["api"], got string "api"']]},
  {file: 'json-depends-on-unknown-service.json', problems: [['12:27', 'web.depends_on[1]', 'no group runs service "apii"; did you mean "api"? (services run: api, web)']]},
  {file: 'json-duplicate-group.json', problems: [['10:3', 'web', 'duplicate key "web"', 'first defined at line 7, column 3']]},
  {file: 'json-duplicate-nested-key.json', problems: [['12:7', 'web.autoscale.node_min', 'duplicate key "node_min"', 'first defined at line 10, column 7']]},
  {file: 'json-empty-file.json', problems: [['1:1', '(top level)', 'expected a dict of node groups']]},
  {file: 'json-from-base-on-base.json', problems: [['6:18', '__base__.from_base', '__base__ cannot build from itself']]},
  {file: 'json-from-base-string.json', problems: [['9:18', 'web.from_base', 'expected true or false']]},
  {file: 'json-from-base-without-packer.json', problems: [['9:18', 'web.from_base', 'from_base needs baking, but packer is false']]},
  {file: 'json-group-name-dot.json', problems: [['7:3', 'web.prod', 'group names may only use letters, digits, "_" and "-"']]},
  {file: 'json-group-name-space.json', problems: [['7:3', 'web server', 'group names may only use letters, digits, "_" and "-"']]},
  {file: 'json-group-not-a-dict.json', problems: [['7:10', 'web', 'expected a dict of group settings']]},
  {file: 'json-instance-type-format.json', problems: [['9:22', 'web.instance_type', 'expected an EC2 instance type such as "m5.large"']]},
  {file: 'json-missing-colon.json', problems: [['4:21', '(top level)', "expected ':' after the key"]]},
  {file: 'json-missing-comma-between-groups.json', problems: [['7:3', '(top level)', "expected ',' between entries"]]},
  {file: 'json-missing-comma.json', problems: [['4:5', '(top level)', "expected ',' between entries"]]},
  {file: 'json-missing-region.json', problems: [['2:3', '__base__', 'no region: set "region"'], ['6:3', 'web', 'no region: set "region"']]},
  {file: 'json-missing-source-ami.json', problems: [['2:3', '__base__', 'no source_ami: set "source_ami"'], ['6:3', 'web', 'no source_ami: set "source_ami"']]},
  {file: 'json-override-attributes-string.json', problems: [['9:28', 'web.override_attributes', 'expected a dict of Chef attributes']]},
  {file: 'json-packer-true.json', problems: [['9:15', 'web.packer', 'expected false']]},
  {file: 'json-post-run-list-number.json', problems: [['9:40', 'web.post_run_list[1]', 'expected a string like "recipe[cookbook::recipe]" or "role[name]"']]},
  {file: 'json-region-format.json', problems: [['9:15', 'web.region', 'expected an AWS region such as "us-east-1"']]},
  {file: 'json-region-number.json', problems: [['9:15', 'web.region', 'expected an AWS region such as "us-east-1"']]},
  {file: 'json-run-list-bare-name.json', problems: [['9:18', 'web.run_list[0]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"']]},
  {file: 'json-run-list-empty-recipe.json', problems: [['9:35', 'web.run_list[1]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"']]},
  {file: 'json-run-list-empty-role.json', problems: [['9:23', 'web.post_run_list[0]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"']]},
  {file: 'json-run-list-space-in-recipe.json', problems: [['9:18', 'web.run_list[0]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"']]},
  {file: 'json-run-list-string.json', problems: [['9:17', 'web.run_list', 'expected a list of run list items, e.g. ["recipe[nginx]"]']]},
  {file: 'json-security-groups-string.json', problems: [['9:24', 'web.security_groups', 'expected a list of security group names']]},
  {file: 'json-service-cookbooks-string.json', problems: [['6:26', '__base__.service_cookbooks', 'expected a list of cookbook names, e.g. ["seatgeek"], got string "shop"']]},
  {file: 'json-services-depends-on-string.json', problems: [['9:54', 'web.services.nginx.depends_on', 'expected a list of service names']]},
  {file: 'json-services-name-space.json', problems: [['8:18', 'web.services.my api', 'expected a service name of letters, digits, "_", "." and "-" only, got "my api"']]},
  {file: 'json-services-not-a-dict.json', problems: [['9:27', 'web.services.nginx', 'expected a dict {port, health_check, depends_on}']]},
  {file: 'json-services-port-out-of-range.json', problems: [['10:25', 'web.services.nginx.port', 'expected a port 1–65535']]},
  {file: 'json-several-problems.json', problems: [['11:19', '12_04-bee.autoscale.node_min', 'expected a whole number'], ['14:5', '12_04-bee.run_lists', 'unknown key "run_lists"', 'did you mean "run_list"?'], ['17:24', '12_04-www.security_groups', 'expected a list of security group names'], ['18:18', '12_04-www.run_list[0]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"'], ['20:3', 'db.primary', 'group names may only use letters, digits, "_" and "-"']]},
  {file: 'json-single-quoted-with-trailing-comma.json', problems: [['9:34', '(top level)', "trailing comma before '}'"]]},
  {file: 'json-source-ami-format.json', problems: [['9:19', 'web.source_ami', 'expected an AMI id such as "ami-1ebb2077"']]},
  {file: 'json-ssh-username-list.json', problems: [['9:21', 'web.ssh_username', 'expected a user name']]},
  {file: 'json-tags-number-value.json', problems: [['9:44', 'web.tags.cost_center', 'expected a string tag value']]},
  {file: 'json-top-level-empty-dict.json', problems: [['1:1', '(top level)', 'the nodes file defines no groups']]},
  {file: 'json-top-level-list.json', problems: [['1:1', '(top level)', 'expected a dict of node groups']]},
  {file: 'json-trailing-comma-list.json', problems: [['8:48', '(top level)', "trailing comma before ']'"]]},
  {file: 'json-trailing-comma-object.json', problems: [['5:33', '(top level)', "trailing comma before '}'"]]},
  {file: 'json-truncated.json', problems: [['7:1', '(top level)', "expected '}'"]]},
  {file: 'json-type-docker.json', problems: [['9:13', 'web.type', 'expected "amazon-ebs"']]},
  {file: 'json-unknown-key-autoscale-node-mx.json', problems: [['9:5', 'web.autoscale.node_max', 'missing key "node_max": expected a whole number'], ['9:50', 'web.autoscale.node_mx', 'unknown key "node_mx"', 'did you mean "node_max"?']]},
  {file: 'json-unknown-key-instance-typ.json', problems: [['9:5', 'web.instance_typ', 'unknown key "instance_typ"', 'did you mean "instance_type"?']]},
  {file: 'json-unknown-key-run-lists.json', problems: [['9:5', 'web.run_lists', 'unknown key "run_lists"', 'did you mean "run_list"?']]},
  {file: 'json-unterminated-string.json', problems: [['3:15', '(top level)', 'unterminated string'], ['4:5', '(top level)', "expected ',' between entries"]]},
  {file: 'json-volume-size-string.json', problems: [['9:20', 'web.volume_size', 'expected a size in GiB']]},
  {file: 'yaml-autoscale-node-mx.yaml', problems: [['8:3', 'web.autoscale.node_max', 'missing key "node_max": expected a whole number'], ['11:5', 'web.autoscale.node_mx', 'unknown key "node_mx"', 'did you mean "node_max"?']]},
  {file: 'yaml-autoscale-timeout-zero.yaml', problems: [['9:14', 'web.autoscale.timeout', 'expected a number of seconds greater than 0']]},
  {file: 'yaml-autoscale-true.yaml', problems: [['8:14', 'web.autoscale', 'expected false or a dict {timeout, node_min, node_max}']]},
  {file: 'yaml-bad-indentation.yaml', problems: [['4:2', '(top level)', 'All mapping items must start at the same column']]},
  {file: 'yaml-depends-on-number.yaml', problems: [['6:21', 'web.depends_on[1]', 'expected a service name (a string), got number 3']]},
  {file: 'yaml-description-number.yaml', problems: [['8:16', 'web.description', 'expected a string']]},
  {file: 'yaml-duplicate-group.yaml', problems: [['7:1', 'web', 'duplicate key "web"', 'first defined at line 5, column 1']]},
  {file: 'yaml-duplicate-nested-key.yaml', problems: [['5:3', '__base__.region', 'duplicate key "region"', 'first defined at line 2, column 3']]},
  {file: 'yaml-group-empty.yaml', problems: [['5:1', 'web', 'expected a dict of group settings']]},
  {file: 'yaml-group-is-list.yaml', problems: [['6:3', 'web', 'expected a dict of group settings']]},
  {file: 'yaml-group-name-unicode.yaml', problems: [['5:1', 'wéb', 'group names may only use letters, digits, "_" and "-"']]},
  {file: 'yaml-missing-instance-type.yaml', problems: [['1:1', '__base__', 'no instance_type: set "instance_type"'], ['4:1', 'web', 'no instance_type: set "instance_type"']]},
  {file: 'yaml-nested-mapping-on-one-line.yaml', problems: [['2:11', '(top level)', 'Nested mappings are not allowed in compact mappings']]},
  {file: 'yaml-only-comments.yaml', problems: [['1:1', '(top level)', 'expected a dict of node groups']]},
  {file: 'yaml-packer-true.yaml', problems: [['8:11', 'web.packer', 'expected false']]},
  {file: 'yaml-run-list-bad-item.yaml', problems: [['10:7', 'web.run_list[1]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"']]},
  {file: 'yaml-run-list-string.yaml', problems: [['8:13', 'web.run_list', 'expected a list of run list items, e.g. ["recipe[nginx]"]']]},
  {file: 'yaml-security-groups-dict.yaml', problems: [['9:5', 'web.security_groups', 'expected a list of security group names']]},
  {file: 'yaml-service-cookbooks-bad-name.yaml', problems: [['8:7', 'web.service_cookbooks[1]', 'expected a cookbook name of letters, digits, "_", "." and "-" only, got string "shop::api"']]},
  {file: 'yaml-services-depends-on-unknown.yaml', problems: [['11:11', '__base__.services.api.depends_on[1]', 'no group runs service "cache" (services run: api, db)']]},
  {file: 'yaml-services-unknown-key.yaml', problems: [['10:7', 'web.services.nginx.prot', 'unknown key "prot"', 'did you mean "port"?']]},
  {file: 'yaml-several-problems.yaml', problems: [['7:14', '12_04-bee.autoscale.timeout', 'expected a number of seconds greater than 0'], ['8:15', '12_04-bee.autoscale.node_min', 'expected node_min ≤ node_max'], ['11:7', '12_04-bee.run_list[0]', 'expected "recipe[cookbook]", "recipe[cookbook::recipe]" or "role[name]"'], ['13:11', '12_04-www.packer', 'expected false'], ['14:3', '12_04-www.servics', 'unknown key "servics"', 'did you mean "services"?']]},
  {file: 'yaml-source-ami-format.yaml', problems: [['8:15', 'web.source_ami', 'expected an AMI id such as "ami-1ebb2077"']]},
  {file: 'yaml-tab-indentation.yaml', problems: [['2:1', '(top level)', 'Tabs are not allowed as indentation'], ['3:1', '(top level)', 'Tabs are not allowed as indentation'], ['4:1', '(top level)', 'Tabs are not allowed as indentation']]},
  {file: 'yaml-top-level-list.yaml', problems: [['1:1', '(top level)', 'expected a dict of node groups']]},
  {file: 'yaml-top-level-scalar.yaml', problems: [['1:1', '(top level)', 'expected a dict of node groups']]},
  {file: 'yaml-type-docker.yaml', problems: [['8:9', 'web.type', 'expected "amazon-ebs"']]},
  {file: 'yaml-unclosed-flow-list.yaml', problems: [['7:3', '(top level)', 'Flow sequence in block collection must be sufficiently indented and end with a ]']]},
  {file: 'yaml-unknown-key-instance-typ.yaml', problems: [['8:3', 'web.instance_typ', 'unknown key "instance_typ"', 'did you mean "instance_type"?']]},
  {file: 'yaml-unquoted-run-list-in-flow-list.yaml', problems: [['6:20', '(top level)', 'Missing , or : between flow sequence items'], ['6:33', '(top level)', 'Missing , or : between flow sequence items']]},
  {file: 'yaml-unterminated-string.yaml', problems: [['2:11', '(top level)', 'Missing closing "quote']]},
  {file: 'yaml-alias-expansion-too-large.yaml', problems: [['12:14', 'web.default_attributes.a5[0]', 'this expands (through YAML aliases) to more than 16 MiB of text, the most muster reads']]},
  {file: 'yaml-alias-cycle.yaml', problems: [['8:14', 'web.default_attributes.loop.again', 'alias *loop refers to a node that contains it']]},
  {file: 'json-nested-too-deep.json', problems: [['7:136', '(top level)', 'nested more than 100 levels deep (dicts and lists); muster reads at most 100 levels']]},
  {file: 'yaml-nested-too-deep.yaml', problems: [['105:201', '(top level)', 'nested more than 100 levels deep (dicts and lists)']]},
  {file: 'yaml-flow-nested-too-deep.yaml', problems: [['6:124', '(top level)', 'nested more than 100 levels deep (dicts and lists)']]},
  {file: 'yaml-number-like-group-names.yaml', problems: [['9:3', '007.instance_typ', 'unknown key "instance_typ"'], ['11:3', '1e3.regoin', 'unknown key "regoin"']]},
  {file: 'yaml-merge-key.yaml', problems: [['9:7', 'web.default_attributes.nginx.<<', 'YAML merge keys (<<) are not supported']]},
  {file: 'yaml-merge-key-group.yaml', problems: [['6:3', 'web.<<', 'YAML merge keys (<<) are not supported']]},
  {file: 'yaml-binary-value.yaml', problems: [['7:19', 'web.default_attributes.key', 'the YAML tag !!binary is not supported']]},
  {file: 'yaml-set-value.yaml', problems: [['7:18', 'web.default_attributes.names', 'the YAML tag !!set is not supported']]},
  {file: 'yaml-bool-tag-yes.yaml', problems: [['7:21', 'web.default_attributes.enabled', 'expected true or false after !!bool, got "yes"']]},
  {file: 'yaml-infinity.yaml', problems: [['7:12', 'web.override_attributes.limit', 'expected a finite number']]},
  {file: 'yaml-integer-beyond-2-53.yaml', problems: [['7:9', 'web.default_attributes.id', 'expected a whole number within ±2^53 (9007199254740991)', 'silently rounded']]},
  {file: 'json-number-too-large.json', problems: [['7:43', 'web.default_attributes.ratio', 'expected a finite number'], ['7:56', 'web.default_attributes.id', 'expected a whole number within ±2^53']]},
  {file: 'json-group-name-too-long.json', problems: [['7:3', 'w'.repeat(65), 'group names may be at most 64 characters, got 65']]},
  {file: 'yaml-tag-value-too-long.yaml', problems: [['7:11', 'web.tags.team', 'expected a tag value of at most 256 characters']]},
  {file: 'json-bom-unknown-key.json', problems: [['7:11', 'web.instance_typ', 'unknown key "instance_typ"']]},
  {file: 'json-not-utf8.json', problems: [['7:30', '(top level)', 'byte 0xe9 is not UTF-8; save the file as UTF-8']]},
  {file: 'yaml-not-utf8.yaml', problems: [['6:18', '(top level)', 'byte 0xef is not UTF-8']]},
  // Issue 8.
  {file: 'json-packer-owned-options.json', problems: [['6:35', '__base__.packer.region', 'packer option "region" is set by muster; set the group\'s "region" instead'], ['10:7', 'web.packer.metadata_options', 'packer option "metadata_options" is set by muster; muster requires IMDSv2'], ['11:7', 'web.packer.ami_name', 'packer option "ami_name" is set by muster']]},
  // Issue 8, second round: Go templates, the packer allowlist, AWS's tag and description limits.
  {file: 'json-packer-go-template.json', problems: [['6:20', '__base__.description', 'contains "{{", which Packer would evaluate as a Go template at bake time; remove it'], ['9:14', 'web.tags.{{uuid}}', 'the key contains "{{"'], ['9:40', 'web.tags.owner', 'contains "{{"'], ['10:29', 'web.packer.user_data', 'contains "{{"'], ['10:96', 'web.packer.subnet_filter.filters.tag:Name', 'contains "{{"']]},
  {file: 'yaml-packer-not-allowed.yaml', problems: [['8:5', 'web.packer.tag', 'packer option "tag" is set by muster; set the group\'s "tags" instead'], ['11:5', 'web.packer.ami_users', 'packer option "ami_users" is set by muster; muster keeps its images private'], ['12:5', 'web.packer.skip_create_ami', 'packer option "skip_create_ami" is set by muster'], ['13:5', 'web.packer.subnet_idd', 'packer option "subnet_idd" is not one muster lets a group set; did you mean "subnet_id"?'], ['14:5', 'web.packer.ami_regions', 'packer option "ami_regions" is set by muster']]},
  // The whole document's expansion counts, and the alias that takes it past the limit is the place.
  {file: 'yaml-alias-total-too-large.yaml', problems: [['13:13', 'web.default_attributes.b2.c', 'this expands (through YAML aliases) to more than 16 MiB of text']]},
  // Numbers that would change silently: beyond ±2^53 in any notation, or nonzero but too small for a double.
  {file: 'yaml-number-rounded-decimal.yaml', problems: [['7:9', 'web.default_attributes.id', 'expected a whole number within ±2^53 (9007199254740991), got 9007199254740993.0, which would be silently rounded (numbers beyond ±2^53, in any notation, are refused)']]},
  {file: 'yaml-number-underflow.yaml', problems: [['7:11', 'web.default_attributes.tiny', 'expected a number a double can hold, got 1e-400, which is too close to 0 and would silently become 0']]},
  {file: 'yaml-float-tag-not-a-number.yaml', problems: [['7:20', 'web.default_attributes.ratio', 'expected a number after !!float, got "abc"']]},
  {file: 'json-number-rounded-exponent.json', problems: [['7:40', 'web.default_attributes.id', 'got 90071992547409930e-1, which would be silently rounded'], ['7:70', 'web.default_attributes.tiny', 'got 2e-324, which is too close to 0 and would silently become 0']]},
  // Keys are text: 7 and "7" are the same key (007 and 7 are not; see hardening.test.ts).
  {file: 'yaml-duplicate-number-like-group.yaml', problems: [['9:1', '7', 'duplicate key "7"', 'first defined at line 5, column 1']]},
  // Brackets inside a plain scalar are text; the real nesting after them is still found.
  {file: 'yaml-brackets-in-text-then-deep.yaml', problems: [['8:108', '(top level)', 'nested more than 100 levels deep (dicts and lists)']]},
  {file: 'json-aws-tag-limits.json', problems: [['6:14', '__base__.tags.aws:owner', 'tag names starting with "aws:" are reserved by AWS, got "aws:owner"; rename it'], ['10:13', 'web.tags', 'AWS allows at most 50 tags on a resource and muster adds 7 of its own', 'this group would have 54 (inherited tags included); remove 4'], ['9:20', 'web.description', 'expected a description of at most 255 characters', 'got 256']]},
  {file: 'yaml-packer-owned-options.yaml', problems: [['8:5', 'web.packer.tags', 'packer option "tags" is set by muster; set the group\'s "tags" instead'], ['9:5', 'web.packer.imds_support', 'packer option "imds_support" is set by muster']]},]

/** runMuster, but without blocking, so one case's commands run side by side. */
function runMusterAsync(args: readonly string[], cwd: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binRun, ...args], {cwd, env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

/** Every file under dir with its content, to compare before and after. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]))
}

const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m
const WRITING_VERBS = [['role:create'], ['generate'], ['packer:create']] as const

describe('malformed nodes files corpus', function () {
  this.timeout(60_000)

  it('has a case for every fixture file and at least 45 of them, JSON and YAML', () => {
    const files = readdirSync(corpusDir).sort()
    expect(cases.map((c) => c.file).sort()).to.deep.equal(files)
    expect(files.length).to.be.at.least(45)
    expect(files.filter((f) => f.endsWith('.json')).length).to.be.at.least(15)
    expect(files.filter((f) => f.endsWith('.yaml')).length).to.be.at.least(15)
    expect(cases.filter((c) => c.problems.length > 1).length).to.be.at.least(3)
  })

  for (const c of cases) {
    describe(c.file, () => {
      const nodesName = `nodes${extname(c.file)}`
      let validate: CliResult
      let validateJson: CliResult
      let writing: CliResult[]
      let filesBefore: Record<string, string>
      let filesAfter: Record<string, string>

      // Every command of a case runs side by side, once; the tests below only read the results.
      before(async () => {
        const dir = makeTempDir('muster-malformed-')
        try {
          copyFileSync(join(corpusDir, c.file), join(dir, nodesName))
          // A role from an earlier, good run: it must survive untouched.
          mkdirSync(join(dir, 'roles'))
          writeFileSync(join(dir, 'roles', 'old.json'), '{"name": "role-old"}\n')
          filesBefore = snapshot(dir)
          const [plain, json, ...rest] = await Promise.all([['validate'], ['validate', '--json'], ...WRITING_VERBS].map((args) => runMusterAsync(args, dir)))
          if (!plain || !json) throw new Error('unreachable: Promise.all lost a result')
          validate = plain
          validateJson = json
          writing = rest
          filesAfter = snapshot(dir)
        } finally {
          removeDir(dir)
        }
      })

      it('validate names every problem at its place, exits 1, prints no stack trace', () => {
        const result = validate
        expect(result.code, result.stderr).to.equal(1)
        expect(result.stdout).to.equal('')
        const n = c.problems.length
        expect(result.stderr).to.contain(`${nodesName} has ${n} problem${n === 1 ? '' : 's'}:`)
        const lines = result.stderr.split('\n').filter((l) => l.startsWith('  '))
        expect(lines, result.stderr).to.have.length(n)
        c.problems.forEach(([at, path, ...fragments], i) => {
          const line = lines[i] ?? ''
          expect(line, result.stderr).to.contain(`${nodesName}:${at}: ${path}: `)
          for (const fragment of fragments) expect(line, result.stderr).to.contain(fragment)
        })
        expect(result.stderr).to.contain('nothing was written')
        expect(result.stderr).not.to.match(STACK_LINE)
        expect(result.stderr).not.to.contain('looks like a bug')
      })

      it('validate --json gives a JSON error naming the places', () => {
        const result = validateJson
        expect(result.code).to.equal(1)
        const out = JSON.parse(result.stdout) as {error?: {message?: string; kind?: string}}
        expect(out.error?.kind).to.equal('user')
        for (const [at, path] of c.problems) expect(out.error?.message).to.contain(`${nodesName}:${at}: ${path}: `)
        expect(result.stderr).not.to.match(STACK_LINE)
      })

      it(`${WRITING_VERBS.map((v) => v.join(' ')).join(', ')} fail and write nothing`, () => {
        writing.forEach((result, i) => {
          const verb = WRITING_VERBS[i]?.join(' ')
          expect(result.code, `${verb}: ${result.stderr}`).to.equal(1)
          expect(result.stderr, verb).to.contain(`${nodesName}:${c.problems[0]?.[0]}: `)
          expect(result.stderr, verb).not.to.match(STACK_LINE)
        })
        expect(filesAfter).to.deep.equal(filesBefore)
      })
    })
  }

  it('autoscale:create and role:update fail too; --verbose on a user error shows no stack trace (it is not a bug)', async () => {
    const dir = makeTempDir('muster-malformed-')
    try {
      copyFileSync(join(corpusDir, 'json-several-problems.json'), join(dir, 'nodes.json'))
      const results = await Promise.all([['role:create', '--verbose'], ['autoscale:create', '--verbose'], ['role:update', '12_04-www']].map((args) => runMusterAsync(args, dir)))
      for (const result of results) {
        expect(result.code).to.equal(1)
        expect(result.stderr).to.contain('nodes.json has 5 problems:')
        expect(result.stderr).not.to.match(STACK_LINE)
      }
      expect(listFiles(dir)).to.deep.equal(['nodes.json'])
    } finally {
      removeDir(dir)
    }
  })

  it('--nodes PATH names the file as given', async () => {
    const dir = makeTempDir('muster-malformed-')
    try {
      copyFileSync(join(corpusDir, 'yaml-unknown-key-instance-typ.yaml'), join(dir, 'fleet.yaml'))
      const result = await runMusterAsync(['packer:create', '--nodes', 'fleet.yaml'], dir)
      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain('fleet.yaml:8:3: web.instance_typ: unknown key "instance_typ"; did you mean "instance_type"?')
      expect(listFiles(dir)).to.deep.equal(['fleet.yaml'])
    } finally {
      removeDir(dir)
    }
  })
})
