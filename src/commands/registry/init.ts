import {Flags} from '@oclif/core'

import {MusterCommand} from '../../base-command.js'
import {registryInit, type RegistryInitResult} from '../../actions/registry-init.js'
import {registryTarget} from '../../actions/registry-target.js'
import {registryFlags, registryScopeFlags} from '../../registry-flags.js'
import {formatAccessSteps} from '../../ui/registry.js'

export default class RegistryInit extends MusterCommand {
  static override summary = 'Lock a project\'s registry down: an etcd role and user for its agents and one for its operators.'
  static override description = `Idempotent; prints what it did. The agents' role (muster-PROJECT-agent) reads the project's keys and writes only services/, nodes/ and rollout/ (their registrations and deploy progress); the operators' role (muster-PROJECT-operator) writes the whole project, deploy requests and group releases included. A node's credentials therefore can never choose what the fleet converges (docs/SECURITY.md has the threat model).

With environments in the nodes file, each environment is its own registry project (PROJECT.ENV, or the project it names): --env ENV creates that environment's roles and users, whose grants cover its prefix only, so a staging node's credentials can neither read nor write production's keys.

A new user's password is written to --out/USER.password (mode 600), never printed. --rotate gives existing users new passwords. --enable-auth also creates etcd's root user (if missing) and turns authentication on, after asking: from then on every client of that etcd needs a user, so run it once, with your agents' credentials in place.`
  static override examples = [
    {description: 'First time, on an etcd without auth yet', command: '<%= config.bin %> <%= command.id %> --etcd https://etcd.internal:2379 --etcd-ca ca.pem --enable-auth'},
    {description: 'Again later, as root (changes nothing if all is in place)', command: 'MUSTER_ETCD_PASSWORD="$(cat .muster/registry/root.password)" <%= config.bin %> <%= command.id %> --etcd https://etcd.internal:2379 --etcd-ca ca.pem --etcd-user root'},
    {description: 'The staging environment\'s users: their roles reach only its project (PROJECT.staging), never production\'s keys', command: 'MUSTER_ETCD_PASSWORD="$(cat .muster/registry/root.password)" <%= config.bin %> <%= command.id %> --env staging --etcd-user root'},
    {description: 'New passwords for the project\'s users, as JSON', command: '<%= config.bin %> <%= command.id %> --rotate --json'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...registryFlags,
    ...registryScopeFlags,
    out: Flags.string({description: 'Directory for new users\' password files (default .muster/registry).', helpValue: 'DIR'}),
    rotate: Flags.boolean({description: 'Give the project\'s existing users new passwords.'}),
    'enable-auth': Flags.boolean({description: 'Create etcd\'s root user if missing and turn authentication on (asks first).'}),
    yes: Flags.boolean({char: 'y', description: 'Answer yes (required for --enable-auth without a terminal).'}),
  }

  public async run(): Promise<RegistryInitResult> {
    const {flags} = await this.parse(RegistryInit)
    const target = await registryTarget(flags, process.env, process.cwd())
    const result = await registryInit({target, cwd: process.cwd(), outDir: flags.out, rotate: flags.rotate, enableAuth: flags['enable-auth']}, this.host(flags))
    if (!this.jsonEnabled()) process.stdout.write(formatAccessSteps(result))
    return result
  }
}
