/** `Status` objects exactly shaped like the real API server's error bodies. */

export class StatusError extends Error {
  readonly code: number
  readonly reason: string
  readonly details?: Record<string, unknown>
  readonly headers: Record<string, string>
  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(message)
    this.code = code
    this.reason = reason
    this.details = details
    this.headers = headers
  }

  body(): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason,
      ...(this.details !== undefined ? { details: this.details } : {}), code: this.code }
  }
}

export const notFound = (resource: string, name: string): StatusError =>
  new StatusError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource })

export const alreadyExists = (resource: string, name: string): StatusError =>
  new StatusError(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource })

export const invalid = (kind: string, name: string, causes: Array<{ field: string, message: string }>): StatusError =>
  new StatusError(422, 'Invalid', `${kind} "${name}" is invalid: ${causes.map(c => `${c.field}: ${c.message}`).join(', ')}`,
    { name, kind, causes: causes.map(c => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })) })

export const badRequest = (message: string): StatusError => new StatusError(400, 'BadRequest', message)

export const gone = (message: string): StatusError => new StatusError(410, 'Expired', message)

export const tooManyRequests = (retryAfterSeconds: number): StatusError =>
  new StatusError(429, 'TooManyRequests', 'Too many requests, please try again later.',
    { retryAfterSeconds }, { 'retry-after': String(retryAfterSeconds) })

export const methodNotAllowed = (): StatusError => new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
