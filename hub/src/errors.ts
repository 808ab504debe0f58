/**
 * The hub's error catalogue: every `HUB_*` code with its default HTTP status and message, in one
 * place. Handlers throw `HttpError`s; modules that know nothing of HTTP throw a `HubError` with a
 * code. One handler at the edge (error-handler.ts) maps both to JupyterHub's error body
 * `{"status": <code>, "message": "..."}` plus our stable `code`. Tests assert on codes.
 */

interface CatalogueEntry {
  readonly status: number
  readonly message: string
  /** Seconds for the Retry-After header. */
  readonly retryAfter?: number
  /** RFC 6749 `error`: the OAuth2 endpoints answer `{error, error_description}` instead. */
  readonly oauth?: string
}

export const HUB_ERRORS = {
  // 400: the request is wrong (JupyterHub answers 400 for most of what others call 409 or 422)
  HUB_BAD_REQUEST: { status: 400, message: 'Bad request' },
  HUB_BAD_JSON: { status: 400, message: 'Invalid JSON in body of request' },
  HUB_BAD_JSON_KEYS: { status: 400, message: 'Invalid JSON keys' },
  HUB_BAD_USERNAME: { status: 400, message: 'Invalid username' },
  HUB_BAD_GROUP_NAME: { status: 400, message: 'Invalid group name' },
  HUB_BAD_SERVER_NAME: { status: 400, message: 'Invalid server name' },
  HUB_BAD_STATE_FILTER: { status: 400, message: 'Unrecognized state filter' },
  HUB_BAD_SORT: { status: 400, message: 'Unrecognized sort' },
  HUB_BAD_PAGINATION: { status: 400, message: 'offset and limit must be non-negative integers' },
  HUB_BAD_TIMESTAMP: { status: 400, message: 'Not a valid timestamp' },
  HUB_FUTURE_TIMESTAMP: { status: 400, message: 'Rejecting activity from the future' },
  HUB_BAD_SCOPE: { status: 400, message: 'Unknown scope' },
  HUB_NO_SUCH_ROLE: { status: 400, message: 'No such role' },
  HUB_SCOPES_NOT_HELD: { status: 400, message: 'Not assigning scopes not held' },
  HUB_NO_GROUPS: { status: 400, message: 'Must specify at least one group' },
  HUB_NO_USERS: { status: 400, message: 'Must specify users' },
  HUB_USER_BUSY: { status: 400, message: 'The user has a server that is not stopped' },
  HUB_NAMED_SERVERS_DISABLED: { status: 400, message: 'Named servers are not enabled.' },
  HUB_NAMED_SERVER_LIMIT: { status: 400, message: 'Named server limit reached' },
  HUB_SERVER_ALREADY_RUNNING: { status: 400, message: 'The server is already running' },
  HUB_SERVER_PENDING: { status: 400, message: 'The server is pending spawn, please wait' },
  HUB_DEFAULT_SERVER: { status: 400, message: 'Cannot delete the default server' },
  HUB_CULL_BAD_LIMIT: { status: 400, message: 'Bad limit' },
  HUB_CULL_BAD_BEFORE: { status: 400, message: 'before must be an event id' },
  HUB_CULL_BAD_BODY: { status: 400, message: 'Bad body' },
  HUB_BODY_TOO_LARGE: { status: 413, message: 'Request body too large' },
  // 403 and 404: who may do what, and what is not there
  HUB_FORBIDDEN: { status: 403, message: 'Forbidden' },
  HUB_MISSING_SCOPE: { status: 403, message: 'Action is not authorized with current scopes' },
  HUB_XSRF: { status: 403, message: 'The form came from another site or your session expired; reload the page and try again.' },
  HUB_NOT_FOUND: { status: 404, message: 'Not Found' },
  HUB_NO_ACCESS: { status: 404, message: 'No access to resources or resources not found' },
  HUB_USER_NOT_FOUND: { status: 404, message: 'No such user' },
  HUB_GROUP_NOT_FOUND: { status: 404, message: 'No such group' },
  HUB_SERVICE_NOT_FOUND: { status: 404, message: 'No such service' },
  HUB_TOKEN_NOT_FOUND: { status: 404, message: 'Token not found' },
  // 409, 424, 429: state
  HUB_USER_EXISTS: { status: 409, message: 'User already exists' },
  HUB_USERS_EXIST: { status: 409, message: 'All users already exist' },
  HUB_GROUP_EXISTS: { status: 409, message: 'Group already exists' },
  HUB_SPAWN_CONFLICT: { status: 409, message: 'The server changed state while starting; try again' },
  HUB_SERVER_NOT_RUNNING: { status: 424, message: 'Server no longer running' },
  HUB_ACTIVE_SERVER_LIMIT: { status: 429, message: 'Active server limit reached; try again later', retryAfter: 30 },
  HUB_SPAWN_QUEUE_FULL: { status: 429, message: 'Too many servers are starting; try again shortly', retryAfter: 10 },
  // 5xx: the hub or something behind it failed
  HUB_INTERNAL: { status: 500, message: 'Internal error' },
  HUB_BAD_CONFIG: { status: 500, message: 'invalid configuration' },
  HUB_SPAWN_FAILED: { status: 500, message: 'Spawn failed' },
  HUB_STARTING: { status: 503, message: 'The hub is starting; try again in a moment', retryAfter: 1 },
  HUB_NOT_READY: { status: 503, message: 'The hub is not ready to start servers; try again in a moment', retryAfter: 1 },
  HUB_SHUTTING_DOWN: { status: 503, message: 'The hub is shutting down' },
  HUB_CULL_NO_ACTIVITY: { status: 503, message: 'could not read route activity from the proxy; nothing culled' },
  HUB_ROUTE_MISSING: { status: 503, message: 'Your server is running but the proxy does not route to it yet. Try again in a moment.' },
  // OpenID Connect sign-in (auth/oidc-authenticator.ts): shown to a person, so the messages say what to do
  HUB_OIDC_BAD_STATE: { status: 400, message: 'This sign-in did not start in this browser, or it took too long. Please sign in again.' },
  HUB_OIDC_NO_CODE: { status: 400, message: 'The identity provider sent no sign-in code. Please sign in again.' },
  HUB_OIDC_PROVIDER_ERROR: { status: 400, message: 'The identity provider could not sign you in. Please try again.' },
  HUB_OIDC_CODE_REJECTED: { status: 400, message: 'This sign-in link has expired or was already used. Please sign in again.' },
  HUB_OIDC_INVALID_RESPONSE: { status: 400, message: 'The answer from the identity provider could not be verified, so you have not been signed in. Please try again.' },
  HUB_OIDC_ACCESS_DENIED: { status: 403, message: 'The sign-in was cancelled or refused at the identity provider. You have not been signed in.' },
  HUB_OIDC_BAD_USERNAME: { status: 403, message: 'Your account name cannot be used here.' },
  HUB_OIDC_NOT_ALLOWED: { status: 403, message: 'That account is not allowed to use this hub.' },
  HUB_OIDC_UNREACHABLE: { status: 502, message: 'The sign-in service cannot be reached right now. Please try again in a minute.' },
  HUB_OIDC_TOKEN_REFUSED: { status: 502, message: 'The identity provider refused the hub\'s request. Please tell the hub administrators.' },
  HUB_OIDC_NO_ID_TOKEN: { status: 502, message: 'The identity provider sent no ID token. Please tell the hub administrators.' },
  // The OAuth2 provider for user servers (oauth/oauth.routes.ts)
  HUB_OAUTH_UNSUPPORTED_RESPONSE_TYPE: { status: 400, message: 'response_type must be code', oauth: 'unsupported_response_type' },
  HUB_OAUTH_UNSUPPORTED_GRANT_TYPE: { status: 400, message: 'grant_type must be authorization_code', oauth: 'unsupported_grant_type' },
  HUB_OAUTH_INVALID_CLIENT: { status: 400, message: 'No such client', oauth: 'invalid_client' },
  HUB_OAUTH_INVALID_REQUEST: { status: 400, message: 'Invalid request', oauth: 'invalid_request' },
  HUB_OAUTH_INVALID_GRANT: { status: 400, message: 'invalid, expired or already used code', oauth: 'invalid_grant' },
} as const satisfies Record<`HUB_${string}`, CatalogueEntry>

export type HubErrorCode = keyof typeof HUB_ERRORS

export function catalogueEntry(code: HubErrorCode): CatalogueEntry {
  return HUB_ERRORS[code]
}

/**
 * A failure a module reports by its code without knowing HTTP (a scope that does not parse, a full
 * spawn queue, a culler that cannot run). The edge answers with the catalogue's status and this
 * error's message, so the message must be fit for the caller to read.
 */
export class HubError extends Error {
  readonly code: HubErrorCode
  constructor(code: HubErrorCode, message: string = HUB_ERRORS[code].message, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HubError'
    this.code = code
  }
}

export interface HttpErrorOptions {
  readonly cause?: unknown
  /** Only where the JupyterHub contract answers this code with another status than the catalogue's. */
  readonly status?: number
  readonly headers?: Record<string, string>
}

/** What handlers throw: a catalogue code, and a message for the caller (default: the catalogue's). */
export class HttpError extends HubError {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  constructor(code: HubErrorCode, message?: string, options: HttpErrorOptions = {}) {
    super(code, message, { cause: options.cause })
    this.name = 'HttpError'
    const entry: CatalogueEntry = HUB_ERRORS[code]
    this.statusCode = options.status ?? entry.status
    this.headers = { ...(entry.retryAfter !== undefined ? { 'retry-after': String(entry.retryAfter) } : {}), ...options.headers }
  }
}

export const missingScope = (scopes: readonly string[]) =>
  new HttpError('HUB_MISSING_SCOPE', `Action is not authorized with current scopes; requires any of [${scopes.join(', ')}]`)
export const userNotFound = (name: string) => new HttpError('HUB_USER_NOT_FOUND', `No such user: '${name}'`)

/**
 * The one mapping from anything thrown to an HttpError, or undefined for a failure nobody
 * expected (a 500). Domain errors get their code's status; body-parser's errors carry `type`.
 */
export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err
  if (err instanceof HubError) return new HttpError(err.code, err.message, { cause: err })
  const e = err as { type?: string; status?: number; limit?: number; message?: unknown } | undefined
  if (e?.type === 'entity.parse.failed') return new HttpError('HUB_BAD_JSON', undefined, { cause: err })
  if (e?.type === 'entity.too.large') return new HttpError('HUB_BODY_TOO_LARGE', `Request body larger than ${e.limit ?? 'the limit'} bytes`, { cause: err })
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new HttpError('HUB_BAD_REQUEST', String(e.message ?? 'Bad request'), { status: e.status, cause: err })
  }
  return undefined
}
