// packer:adopt: images baked before muster tagged images with their project carry the group tag
// alone; retention, packer:delete and from_base leave such legacy images alone, since another
// project with a group of that name may have baked them. Adopting tags them with this project
// (after a list and a confirmation), and from then on they are the project's like any other.
import {createImageStore, type ImageStore} from '../aws/ec2.js'
import {type AdoptResult, adoptImages} from '../aws/retention.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'

export interface PackerAdoptOptions extends ProjectOptions {
  group: string
  /** Only these images; undefined: every legacy image of the group. */
  imageIds?: string[] | undefined
  /** Only list what would be adopted. */
  dryRun: boolean
  openStore?: (region: string) => ImageStore & {close(): void}
}

export async function packerAdopt(options: PackerAdoptOptions, io: IoHost): Promise<AdoptResult> {
  const project = new Project(options, io)
  const group = project.group(options.group)
  const owner = project.owner()
  const store = (options.openStore ?? ((region: string) => createImageStore({region})))(group.region)
  try {
    const request = {store, group: group.name, owner, imageIds: options.imageIds}
    // Look first: a named image that is not the group's or is another project's is refused here.
    const planned = await adoptImages({...request, dryRun: true})
    if (planned.alreadyOurs.length > 0) io.progress(`${group.name}: already project ${owner.project}'s: ${planned.alreadyOurs.join(', ')}`)
    if (planned.adopted.length === 0) {
      io.progress(`${group.name}: no legacy image to adopt (images tagged muster:group=${group.name} without muster:project, in ${group.region})`)
      return planned
    }
    io.progress(`${group.name}: ${planned.adopted.length} legacy image(s) to tag muster:project=${owner.project}: ${planned.adopted.map((i) => `${i.id} (${i.name || 'no name'}, ${i.created || 'no date'})`).join(', ')}`)
    if (options.dryRun) return planned
    await io.confirm({
      question: `Make these images project ${owner.project}'s? Retention and packer:delete will then manage them (and may deregister them).`,
      unattended: {message: `adopting images for ${group.name} needs confirmation and there is no terminal`, hint: `Review the list above, then run: muster packer:adopt ${group.name}${options.imageIds ? ` ${options.imageIds.join(' ')}` : ''} --yes`},
      declined: {message: 'nothing was tagged'},
    })
    // The same images as listed: adopt exactly those, not whatever is legacy by now.
    return await adoptImages({...request, imageIds: planned.adopted.map((i) => i.id), dryRun: false})
  } finally {
    store.close()
  }
}
