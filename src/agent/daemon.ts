// `muster agent` as a process: settings → identity → etcd → agent → status server, and the
// signals: SIGHUP re-reads the node's configuration (decommissioning what left), SIGTERM/SIGINT
// deregister and stop with exit 0. Everything that can be wrong with the input is found before the
// first registration, so a bad start leaves nothing half-registered.
import {mkdirSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {UserError} from '../errors.js'
import {atomicWrite} from '../lib/atomic-write.js'
import {openEtcd} from '../registry/etcd.js'
import {RegistryFeed} from '../registry/feed.js'
import {resolveProject} from '../registry/project.js'
import {explainRegistryFailure} from '../registry/read.js'
import {DeployFeed} from '../registry/deploy-feed.js'
import {readCurrentRelease} from '../release/fetch.js'
import {Agent, identityFromRelease} from './agent.js'
import {bootRelease, Deployer} from './deployer.js'
import {HaproxyController} from './haproxy.js'
import {systemProbe} from './health.js'
import {haproxyIo} from './haproxy-io.js'
import {haproxyTemplateReader} from './haproxy-template.js'
import {checkProvisionCommand, fromInstanceMetadata, type Identity, loadIdentity} from './identity.js'
import {createLogger, type Logger} from './log.js'
import {CommandProvisioner} from './provisioner.js'
import {watchRetireKey} from './retire-watch.js'
import type {AgentSettings, HaproxySettings} from './settings.js'
import {createMetrics, serveStatus, type StatusServer} from './status.js'

export interface DaemonContext {
  cwd: string
  env: NodeJS.ProcessEnv
}

interface Prepared {
  node: string
  stateDir: string
  project: string
  identity: Identity
  readIdentity: () => Identity
}

/** Everything that can be wrong with the input, found before anything talks to etcd. */
async function prepare(settings: AgentSettings, context: DaemonContext): Promise<Prepared> {
  const fromImds = settings.node === undefined || settings.address === undefined ? await fromInstanceMetadata(context.env) : undefined
  const node = settings.node ?? (fromImds as {node: string}).node
  const address = settings.address ?? (fromImds as {address: string}).address
  const readIdentity = (): Identity => loadIdentity({group: settings.group, nodes: settings.nodes, dna: settings.dna, node, address, cwd: context.cwd, env: context.env, environment: settings.environment})
  const identity = readIdentity()
  checkProvisionCommand(settings.provision, context.env)
  const project = await resolveProject(settings.project, context.env, identity.projectDir)
  const stateDir = resolve(context.cwd, settings.stateDir ?? join('.muster', 'agent', node))
  try {
    mkdirSync(stateDir, {recursive: true, mode: 0o700})
  } catch (error) {
    throw new UserError(`cannot create the state dir ${stateDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'Give --state-dir a directory this user can write.'})
  }
  return {node, stateDir, project, identity, readIdentity}
}

/** Runs until SIGTERM/SIGINT; resolves with the exit code. Throws UserError for bad input at start. */
export async function runAgent(settings: AgentSettings, context: DaemonContext): Promise<number> {
  const {node, stateDir, project, identity, readIdentity} = await prepare(settings, context)
  const log = createLogger(settings.logFormat, {node, group: identity.group})
  const store = openEtcd({endpoints: settings.endpoints, callTimeoutMs: 3000, security: settings.security})
  const feed = new RegistryFeed(store, project, log)
  const deploys = new DeployFeed(store, project, log)
  // The rollouts come through the feed's one watch of the project (one watch per agent).
  deploys.follow(feed)
  try {
    await feed.start()
  } catch (error) {
    await feed.stop()
    store.close()
    throw await explainRegistryFailure(error as Error, settings.endpoints, settings.security)
  }
  const metrics = createMetrics(feed)
  const provisioner = new CommandProvisioner({command: settings.provision, stateDir, node, group: identity.group, environment: settings.environment, env: context.env})
  const agent = new Agent({
    identity,
    project,
    ttlSeconds: settings.ttlSeconds,
    wait: settings.wait,
    drainMs: settings.drainMs,
    stateDir,
    store,
    feed,
    provisioner,
    log,
    metrics,
    writeFile: (path, text) => atomicWrite(path, text, {mode: 0o600}),
    healthProbe: systemProbe(context.env),
    healthTiming: settings.health,
  })
  // Release downloads use the node's own credentials; MUSTER_RELEASE_BUCKET, when set, is the only bucket accepted.
  const allowedBucket = context.env.MUSTER_RELEASE_BUCKET
  // With environments, releases are the fleet's (releaseProject), not one environment's registry project.
  const releaseProject = settings.releaseProject ?? project
  const fetch = {...(allowedBucket ? {allowedBucket} : {}), ...(settings.releaseProject === undefined ? {} : {releaseProject})}
  const deployer = new Deployer({project, node, group: identity.group, stateDir, store, feed: deploys, target: agent, log, fetch})
  const haproxy = settings.haproxy && createHaproxy(settings.haproxy, agent, feed, log)
  let status: StatusServer | undefined
  let stopRetireWatch: (() => void) | undefined
  try {
    // The status port first: a port already taken must fail before anything is registered.
    if (settings.statusAddr) status = await serveStatus(settings.statusAddr, () => ({...agent.health(), deploy: deployer.status, ...(haproxy ? {haproxy: haproxy.status} : {})}), metrics.registry)
    // A late node (a new ASG instance) converges its group's current release at its boot provision.
    const release = await bootRelease({project, group: identity.group, stateDir, store, log, fetch})
    if (release) agent.useRelease(release)
    await agent.start()
    deployer.start()
    await haproxy?.start()
    // An operator's retire key (blue-green update): deregister, drain, report retired.
    stopRetireWatch = await watchRetireKey(feed, store, project, node, () => void agent.retire(), log)
  } catch (error) {
    stopRetireWatch?.()
    await status?.close()
    await haproxy?.stop()
    await deployer.stop()
    await agent.stop()
    await deploys.stop()
    await feed.stop()
    store.close()
    if (error instanceof UserError) throw error
    const code = (error as NodeJS.ErrnoException).code
    const what = code === 'EADDRINUSE' ? `--status-addr ${settings.statusAddr?.host}:${settings.statusAddr?.port} is already in use` : code === 'EADDRNOTAVAIL' ? `--status-addr ${settings.statusAddr?.host} is not an address of this machine` : (error as Error).message
    throw new UserError(`the agent could not start: ${what}`, {hint: 'Choose another --status-addr (port 0 picks a free one); nothing stays registered.'})
  }
  log.info('agent started', {project, services: agent.identity.services.map((s) => s.name), dependsOn: agent.identity.dependsOn, release: agent.releaseDigest ?? undefined, status: status ? `${status.address.host}:${status.address.port}` : undefined, stateDir})
  // Once the node runs a release, the release says what it is; SIGHUP re-reads it, not the nodes file.
  const reread = (): Identity => {
    const fromFile = readIdentity()
    const current = readCurrentRelease(stateDir, {project: releaseProject, group: fromFile.group})
    return current ? identityFromRelease(fromFile, current) : fromFile
  }
  return waitForSignals(agent, deployer, reread, log, async () => {
    stopRetireWatch?.()
    await haproxy?.stop()
    await status?.close()
    await deploys.stop()
    await feed.stop()
    store.close()
  }, () => haproxy?.changed())
}

/** haproxy fed by the registry: re-rendered on every change of the view and on each reload. */
function createHaproxy(settings: HaproxySettings, agent: Agent, feed: RegistryFeed, log: Logger): HaproxyController {
  const controller = new HaproxyController({
    io: haproxyIo({configPath: settings.configPath, binary: settings.binary, masterSocket: settings.socket, reloadCommand: settings.reload}),
    configPath: settings.configPath,
    node: agent.identity.node,
    group: agent.identity.group,
    template: haproxyTemplateReader(settings.template, agent.identity.projectDir),
    dependencies: () => agent.identity.dependsOn.map((name) => ({name, port: agent.identity.dependencySpecs?.[name]?.port, healthCheck: agent.identity.dependencySpecs?.[name]?.health_check})),
    where: (service) => feed.view.where(service),
    log,
  })
  feed.subscribe((change) => {
    if (agent.identity.dependsOn.some((name) => change.services.has(name))) controller.changed()
  })
  return controller
}

function waitForSignals(agent: Agent, deployer: Deployer, readIdentity: () => Identity, log: Logger, cleanup: () => Promise<void>, onReload?: () => void): Promise<number> {
  return new Promise((resolveExit) => {
    let reloading: Promise<void> = Promise.resolve()
    const onHup = (): void => {
      reloading = reloading.then(async () => {
        let next: Identity
        try {
          next = readIdentity()
        } catch (error) {
          // A bad edit must not take the node down: keep the running configuration.
          log.error('reload refused; keeping the running configuration', {error: (error as Error).message})
          return
        }
        log.info('configuration reloaded', {services: next.services.map((s) => s.name), dependsOn: next.dependsOn})
        await agent.reload(next)
        onReload?.()
      })
    }
    let stopping = false
    const onStop = (signal: string): void => {
      if (stopping) return
      stopping = true
      log.info('stopping', {signal})
      void (async () => {
        // No new slot; a deploy run in progress is cancelled by the agent's stop and reports failed.
        const deploying = deployer.stop()
        await agent.stop()
        await deploying
        await cleanup()
        process.off('SIGHUP', onHup)
        resolveExit(0)
      })()
    }
    process.on('SIGHUP', onHup)
    process.once('SIGTERM', () => onStop('SIGTERM'))
    process.once('SIGINT', () => onStop('SIGINT'))
  })
}
