// packer:delete: a group will never be baked again. Deregister all its AMIs and their snapshots
// (refusing while one is in use, unless forced), drop the bake part from its stack, delete its
// Packer template and manifest — and nothing else: no ASG, instance, role or dna is touched.
import {rmSync} from 'node:fs'
import {join} from 'node:path'

import {createImageStore, type ImageStore} from '../aws/ec2.js'
import {deleteAllImages, type RetentionResult} from '../aws/retention.js'
import {packerManifestPath, packerTemplatePath} from '../artifacts/packer.js'
import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {requireGroup} from '../nodes/model.js'
import {applyParts, type ApplyResult, type StackIO} from './service.js'

export interface PackerDeleteOptions {
  cwd: string
  nodesPath?: string | undefined
  group: string
  force: boolean
  yes: boolean
  /** Only list what would go. */
  dryRun: boolean
  openStore?: (region: string) => ImageStore & {close(): void}
}

export interface PackerDeleteResult {
  images: RetentionResult
  stack?: ApplyResult
  removedFiles: string[]
}

export async function deleteGroupImages(options: PackerDeleteOptions, io: StackIO): Promise<PackerDeleteResult> {
  const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath})
  const group = requireGroup(nodes, options.group)
  const store = (options.openStore ?? ((region: string) => createImageStore({region})))(group.region)
  try {
    // Look first (a dry run refuses too when an image is in use and --force is absent).
    const planned = await deleteAllImages({store, group: group.name, force: options.force, dryRun: true})
    const files = [packerTemplatePath(group.name), packerManifestPath(group.name)]
    io.progress(`${group.name}: ${planned.removed.length} image(s) to deregister (${planned.removed.map((i) => i.id).join(', ') || 'none'}), their snapshots, the bake part of its stack, and ${files.join(', ')}`)
    if (options.dryRun) return {images: planned, removedFiles: []}
    if (!options.yes) {
      if (!io.interactive) throw new UserError(`deleting the images of ${group.name} needs confirmation and there is no terminal`, {hint: `Review the list above, then run: muster packer:delete ${group.name} --yes`})
      if (!(await io.confirm(`Deregister every image of ${group.name} and delete its snapshots? This cannot be undone.`))) throw new UserError('nothing was deleted')
    }
    const images = await deleteAllImages({store, group: group.name, force: options.force, dryRun: false})
    const stack = await applyParts(
      {
        cwd: options.cwd,
        nodesPath: options.nodesPath,
        groups: [group.name],
        change: (intent) => {
          const {cleanedAt: _cleanedAt, ...rest} = intent
          return {...rest, bake: false}
        },
        parts: ['bake', 'retention'],
        yes: true,
        previewOnly: false,
        onlyExisting: true,
      },
      io,
    )
    for (const file of files) rmSync(join(options.cwd, file), {force: true})
    return {images, stack, removedFiles: files}
  } finally {
    store.close()
  }
}
