// Pulumi mocks for the machine parts: every resource registration and provider call is recorded,
// and look-ups answer as a small account would (a default VPC with two default subnets, security
// groups found by name per VPC, AMIs with a root device name).
import * as pulumi from '@pulumi/pulumi'

import type {Group, NodesFile} from '../../src/nodes/model.js'
import {parseSource} from '../../src/nodes/source.js'
import {validateNodes} from '../../src/nodes/validate.js'

export interface Registered {
  type: string
  name: string
  inputs: Record<string, unknown>
}

export interface Account {
  resources: Registered[]
  calls: pulumi.runtime.MockCallArgs[]
  /** Resource options seen by a `transformations` hook, by resource name. */
  options: Map<string, pulumi.CustomResourceOptions>
  /** Component options that record every child's options into `options`. */
  record: pulumi.ComponentResourceOptions
  byType(type: string): Registered[]
  one(type: string, name?: string): Registered
  callsOf(token: string): pulumi.runtime.MockCallArgs[]
}

export const LT = 'aws:ec2/launchTemplate:LaunchTemplate'
export const ASG = 'aws:autoscaling/group:Group'
export const INSTANCE = 'aws:ec2/instance:Instance'
export const KEY_PAIR = 'aws:ec2/keyPair:KeyPair'

export const DEFAULT_VPC = 'vpc-default'
/** Listed out of order on purpose: the program must sort them. */
export const DEFAULT_SUBNETS = ['subnet-def-b', 'subnet-def-a']
/** Zones of the subnets a group may name in these tests. */
export const SUBNET_ZONES: Readonly<Record<string, string>> = {'subnet-aaa': 'us-east-1a', 'subnet-bbb': 'us-east-1b', 'subnet-ccc': 'us-east-1b'}
export const CUSTOM_VPC = 'vpc-custom'

type Filter = {name: string; values: string[]}
const filterValues = (inputs: Record<string, unknown>, name: string): string[] | undefined =>
  (inputs.filters as Filter[] | undefined)?.find((f) => f.name === name)?.values

export async function mockAccount(): Promise<Account> {
  const resources: Registered[] = []
  const calls: pulumi.runtime.MockCallArgs[] = []
  const options = new Map<string, pulumi.CustomResourceOptions>()
  let ip = 0
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Record<string, unknown>
        resources.push({type: args.type, name: args.name, inputs})
        const state: Record<string, unknown> = {...inputs}
        if (args.type === LT) state.latestVersion = 7
        if (args.type === INSTANCE) {
          ip += 1
          state.privateIp = `10.0.0.${ip}`
          state.publicIp = `203.0.113.${ip}`
        }
        return {id: `${args.name}-id`, state}
      },
      call(args) {
        calls.push(args)
        const inputs = args.inputs as Record<string, unknown>
        switch (args.token) {
          case 'aws:ec2/getVpc:getVpc':
            return {id: DEFAULT_VPC, default: true}
          case 'aws:ec2/getSubnet:getSubnet':
            return {id: inputs.id, vpcId: CUSTOM_VPC}
          case 'aws:ec2/getSubnets:getSubnets': {
            const ids = filterValues(inputs, 'subnet-id')
            if (!ids) return {ids: DEFAULT_SUBNETS}
            const zone = filterValues(inputs, 'availability-zone')?.[0]
            return {ids: ids.filter((id) => zone === undefined || SUBNET_ZONES[id] === zone)}
          }
          case 'aws:ec2/getSecurityGroup:getSecurityGroup':
            return {id: `sg-${String(inputs.name)}-in-${String(inputs.vpcId)}`}
          case 'aws:ec2/getAmi:getAmi':
            return {id: filterValues(inputs, 'image-id')?.[0], rootDeviceName: '/dev/sda1'}
          default:
            throw new Error(`unexpected call ${args.token}`)
        }
      },
    },
    'muster',
    'test',
  )
  const byType = (type: string): Registered[] => resources.filter((r) => r.type === type)
  return {
    resources,
    calls,
    options,
    record: {
      transformations: [
        (args) => {
          options.set(args.name, args.opts)
          return undefined
        },
      ],
    },
    byType,
    one(type, name) {
      const found = byType(type).filter((r) => name === undefined || r.name === name)
      if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${name}` : ''}, found ${found.length}`)
      return found[0] as Registered
    },
    callsOf: (token) => calls.filter((c) => c.token === token),
  }
}

/** The value of an output, once the mocks have answered. */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => {
    output.apply((value) => {
      resolve(value)
      return value
    })
  })
}

export function groupOf(value: Record<string, unknown>, name: string): Group {
  const result = validateNodes(parseSource('nodes.json', JSON.stringify(value)))
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'))
  const nodes: NodesFile = result.nodes
  const group = nodes.groups.get(name)
  if (!group) throw new Error(`no group ${name}`)
  return group
}

export const BASE = {
  region: 'us-east-1',
  instance_type: 'm5.large',
  source_ami: 'ami-0123abcd',
  security_groups: ['internal'],
  run_list: ['recipe[base]'],
}
