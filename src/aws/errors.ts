// AWS failures a user can act on (no credentials, no permission, an unreachable endpoint, a
// throttled account) become UserErrors with the next step. The text comes from the SDK error's
// name and message only: those never carry the secret key or the session token.
import {UserError} from '../errors.js'

/** The SDK's error name for a service error (EC2 puts the API's error code there). */
export function awsErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const e = error as {name?: unknown; Code?: unknown; code?: unknown}
  if (typeof e.Code === 'string') return e.Code
  if (typeof e.name === 'string') return e.name
  return typeof e.code === 'string' ? e.code : undefined
}

export function isAwsError(error: unknown, ...names: readonly string[]): boolean {
  const name = awsErrorName(error)
  return name !== undefined && names.includes(name)
}

const credentialErrors = new Set(['CredentialsProviderError', 'ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired'])
const authErrors = new Set(['AuthFailure', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException'])
const permissionErrors = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException'])
const throttleErrors = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded'])

/**
 * Turns an error from an AWS call into a UserError when the user can fix its cause; returns any
 * other error unchanged (a malformed request is muster's bug, not the user's).
 * `action` says what muster was doing ("listing the images of group web in us-east-1").
 */
export function translateAwsError(error: unknown, action: string): unknown {
  if (error instanceof UserError) return error
  const name = awsErrorName(error) ?? ''
  const message = error instanceof Error ? error.message : String(error)
  if (credentialErrors.has(name)) {
    return new UserError(`no usable AWS credentials while ${action}: ${message}`, {
      hint: 'Set AWS_PROFILE (then "aws sso login" if it uses SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and run the command again.',
      cause: error,
    })
  }
  if (authErrors.has(name)) {
    return new UserError(`AWS rejected the credentials while ${action} (${name})`, {
      hint: 'Check that the credentials in your environment or AWS_PROFILE are current and belong to the right account.',
      cause: error,
    })
  }
  if (permissionErrors.has(name)) {
    return new UserError(`not allowed while ${action}: ${message}`, {
      hint: 'Grant these credentials ec2:DescribeImages, ec2:DescribeLaunchTemplates, ec2:DescribeLaunchTemplateVersions, ec2:DescribeInstances, ec2:DeregisterImage, ec2:DeleteSnapshot, autoscaling:DescribeAutoScalingGroups and autoscaling:DescribeLaunchConfigurations.',
      cause: error,
    })
  }
  if (throttleErrors.has(name)) {
    return new UserError(`AWS throttled muster while ${action}`, {hint: 'Wait a minute and run the command again; nothing is left half-done by retrying.', cause: error})
  }
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET/.test(`${name} ${message}`)) {
    const endpoint = process.env.AWS_ENDPOINT_URL
    return new UserError(`cannot reach AWS while ${action}: ${message}`, {
      hint: endpoint ? `AWS_ENDPOINT_URL is ${endpoint}: check that it answers, or unset it to use AWS itself.` : 'Check your network connection (and proxy settings), then run the command again.',
      cause: error,
    })
  }
  return error
}

/** Runs an AWS call and translates what it throws. */
export async function aws<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw translateAwsError(error, action)
  }
}
