// The availability zones of a region, for instance:create's zone choice.
import {DescribeAvailabilityZonesCommand, EC2Client} from '@aws-sdk/client-ec2'

import {aws} from './errors.js'

export async function regionZones(region: string): Promise<string[]> {
  const client = new EC2Client({region})
  try {
    return await aws(`listing the availability zones of ${region}`, async () => {
      const out = await client.send(new DescribeAvailabilityZonesCommand({Filters: [{Name: 'state', Values: ['available']}]}))
      return (out.AvailabilityZones ?? []).flatMap((z) => (z.ZoneName ? [z.ZoneName] : [])).sort()
    })
  } finally {
    client.destroy()
  }
}
