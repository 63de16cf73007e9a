// packer:delete: a group will never be baked again. Deregister all its AMIs and their snapshots
// (refusing while one is in use, unless forced), drop the bake part from its stack, delete its
// Packer template and manifest — and nothing else: no ASG, instance, role or dna is touched.
import {rmSync} from 'node:fs'
import {join} from 'node:path'

import {packerManifestPath, packerTemplatePath} from '../artifacts/packer.js'
import {refuseSymlinkOutOfProject} from '../artifacts/writer.js'
import {createImageStore, type ImageStore} from '../aws/ec2.js'
import {deleteAllImages, type RetentionResult} from '../aws/retention.js'
import type {Intent} from '../stacks/intent.js'
import type {IoHost} from './io.js'
import {pinnedUsers} from './packer.js'
import {Project, type ProjectOptions} from './project.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface PackerDeleteOptions extends ProjectOptions {
  group: string
  force: boolean
  /** Only list what would go. */
  dryRun: boolean
  openStore?: (region: string) => ImageStore & {close(): void}
}

export interface PackerDeleteResult {
  images: RetentionResult
  stack?: ApplyResult
  removedFiles: string[]
}

/** What a verb says about legacy images it leaves alone (retention and delete never touch them). */
export function legacyNotice(group: string, ids: readonly string[]): string {
  return `${group}: ${ids.length} untagged legacy image(s) (${ids.join(', ')}) carry muster:group but no muster:project: not ours to touch, left as they are. Adopt them with: muster packer:adopt ${group}`
}

export async function packerDelete(options: PackerDeleteOptions, io: IoHost): Promise<PackerDeleteResult> {
  const project = new Project(options, io)
  const group = project.group(options.group)
  const files = [packerTemplatePath(group.name, group.environment), packerManifestPath(group.name, group.environment)]
  // Before anything is deregistered: the files it would delete must be the project's own.
  for (const file of files) refuseSymlinkOutOfProject(options.cwd, file, 'muster deletes nothing through it, so nothing was deleted')
  const owner = project.owner()
  const store = (options.openStore ?? ((region: string) => createImageStore({region})))(group.region)
  try {
    // Look first (a dry run refuses too when an image is in use and --force is absent).
    const pinned = pinnedUsers(project, group.name)
    const planned = await deleteAllImages({store, group: group.name, owner, force: options.force, dryRun: true, pinned})
    io.progress(`${group.name}: ${planned.removed.length} image(s) of project ${owner.project} to deregister (${planned.removed.map((i) => i.id).join(', ') || 'none'}), their snapshots, the bake part of its stack, and ${files.join(', ')}`)
    if (planned.legacy.length > 0) io.progress(legacyNotice(group.name, planned.legacy.map((i) => i.id)))
    if (options.dryRun) return {images: planned, removedFiles: []}
    await io.confirm({
      question: `Deregister every image of ${group.name} and delete its snapshots? This cannot be undone.`,
      unattended: {message: `deleting the images of ${group.name} needs confirmation and there is no terminal`, hint: `Review the list above, then run: muster packer:delete ${group.name} --yes`},
      declined: {message: 'nothing was deleted'},
    })
    const images = await deleteAllImages({store, group: group.name, owner, force: options.force, dryRun: false, pinned})
    const withoutBake = (intent: Intent): Intent => {
      const {cleanedAt: _cleanedAt, ...rest} = intent
      return {...rest, bake: false}
    }
    const stack = await updateStacks(project, {groups: [group], change: withoutBake, parts: ['bake', 'retention'], previewOnly: false, onlyExisting: true, ask: false}, io)
    for (const file of files) {
      refuseSymlinkOutOfProject(options.cwd, file, 'muster deletes nothing through it; the images are gone, the file was not deleted')
      rmSync(join(options.cwd, file), {force: true})
    }
    return {images, stack, removedFiles: files}
  } finally {
    store.close()
  }
}
