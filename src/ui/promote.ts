// packer:promote's result line. Pure.
import type {PromoteResult} from '../actions/packer-promote.js'

/** "web: production runs ami-… (staging's ami-…, copied from us-west-2)". */
export function formatPromoted(result: PromoteResult): string {
  const {plan} = result
  const copied = plan.copy === 'none' ? '' : `, ${plan.copy === 'copy' ? 'copied' : 'a copy made earlier'} from ${plan.source.region}`
  return `${plan.group}: ${plan.to} runs ${result.image ?? '?'} (${plan.from}'s ${plan.source.id}${copied})`
}
