/** Errors of the built-in single-user server, each with a stable code (tests assert on codes). */
export class SingleUserError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SingleUserError'
    this.code = code
  }
}

export const configInvalid = (problems: string[]): SingleUserError =>
  new SingleUserError('SINGLEUSER_CONFIG_INVALID',
    `invalid single-user environment:\n  - ${problems.join('\n  - ')}`)

export const hubUnreachable = (url: string, attempts: number, cause: unknown): SingleUserError =>
  new SingleUserError('SINGLEUSER_HUB_UNREACHABLE',
    `could not reach the hub at ${url} after ${attempts} attempts`, { cause })
