/**
 * The hub's error catalogue. Handlers throw these; one handler at the edge (app.ts) turns them
 * into JupyterHub's error body `{"status": <code>, "message": "..."}` plus our stable `code`.
 */
export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  readonly headers: Readonly<Record<string, string>>
  constructor(statusCode: number, code: string, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, { cause: options?.cause })
    this.name = 'HttpError'
    this.statusCode = statusCode
    this.code = code
    this.headers = options?.headers ?? {}
  }
}

export const badRequest = (message: string, code = 'HUB_BAD_REQUEST') => new HttpError(400, code, message)
export const forbidden = (message = 'Forbidden', code = 'HUB_FORBIDDEN') => new HttpError(403, code, message)
export const missingScope = (scopes: readonly string[]) =>
  new HttpError(403, 'HUB_MISSING_SCOPE', `Action is not authorized with current scopes; requires any of [${scopes.join(', ')}]`)
export const notFound = (message = 'Not Found', code = 'HUB_NOT_FOUND') => new HttpError(404, code, message)
export const userNotFound = (name: string) => new HttpError(404, 'HUB_USER_NOT_FOUND', `No such user: '${name}'`)
export const conflict = (message: string, code = 'HUB_CONFLICT') => new HttpError(409, code, message)
