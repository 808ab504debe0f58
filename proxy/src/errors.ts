/**
 * The proxy's error catalogue: one `ProxyError` class with a stable `code` and a default HTTP status.
 * Tests assert on codes. The wire texts of the CHP-compatible API stay CHP's (see api.ts); these
 * codes are for our own logs, config errors and the REST client.
 */
export type ProxyErrorCode =
  | 'PROXY_CONFIG_INVALID'
  | 'PROXY_NO_ROUTE'
  | 'PROXY_UPSTREAM_UNAVAILABLE'
  | 'PROXY_BAD_PATH'
  | 'PROXY_BODY_TOO_LARGE'
  | 'PROXY_BAD_ROUTE'

export class ProxyError extends Error {
  readonly code: ProxyErrorCode
  readonly statusCode: number
  constructor(code: ProxyErrorCode, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProxyError'
    this.code = code
    this.statusCode = statusCode
  }
}

/** Thrown by parseProxyConfig with every problem found, one per line. */
export function configInvalid(problems: readonly string[]): ProxyError {
  return new ProxyError('PROXY_CONFIG_INVALID', 400, `invalid proxy configuration:\n  ${problems.join('\n  ')}`)
}

export function badRoute(message: string): ProxyError {
  return new ProxyError('PROXY_BAD_ROUTE', 400, message)
}

/** Network errors we expect from upstreams that went away: logged without a stack (as CHP does). */
export const KNOWN_UPSTREAM_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED',
])
