/**
 * The standalone culler's REST client: only the JupyterHub API (contract §7), so it works against
 * any compatible hub. Bounded retries on 429, 5xx and network errors (Retry-After honoured, capped);
 * paginated listing that follows `_pagination.next.url` and stops on a repeated or foreign URL.
 */

export const PAGINATION_TYPE = 'application/jupyterhub-pagination+json'

export interface ServerModel {
  readonly name?: string
  readonly last_activity?: string | null
  readonly started?: string | null
  readonly ready?: boolean
  readonly pending?: string | null
}

export interface UserModel {
  readonly name: string
  readonly admin?: boolean
  readonly last_activity?: string | null
  readonly created?: string | null
  readonly servers?: Record<string, ServerModel>
}

export class HubApiError extends Error {
  readonly code: string
  readonly status: number | undefined
  constructor(code: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HubApiError'
    this.code = code
    this.status = status
  }
}

export interface ClientOptions {
  /** The hub API, e.g. http://127.0.0.1:8081/hub/api */
  readonly url: string
  readonly token: string
  /** Per request, ms (JUPYTERHUB_REQUEST_TIMEOUT). */
  readonly requestTimeoutMs: number
  /** Attempts per request (1 = no retry). */
  readonly attempts: number
  /** First retry delay, ms; doubles each time, at most `maxDelayMs`. */
  readonly retryDelayMs: number
  readonly maxDelayMs: number
  readonly pageSize: number
}

const MAX_PAGES = 100_000
const MAX_BODY = 64 * 1024 * 1024

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

function retryAfterMs(res: Response, fallback: number, cap: number): number {
  const h = res.headers.get('retry-after')
  const s = h !== null && /^\d{1,6}$/.test(h.trim()) ? Number(h) * 1000 : fallback
  return Math.min(s, cap)
}

export function createHubClient(o: ClientOptions) {
  const base = o.url.replace(/\/+$/, '')
  const origin = new URL(base).origin

  /**
   * The hub builds `next.url` from the Host it was asked on, which behind a proxy may not be the
   * address we use; take its path and query only, so the token never goes anywhere but `--url`.
   */
  function nextPage(url: unknown): string | null {
    if (typeof url !== 'string') return null
    let u: URL
    try { u = new URL(url, base) } catch { throw new HubApiError('CULL_BAD_RESPONSE', `GET /users: bad next page URL ${url}`) }
    return `${origin}${u.pathname}${u.search}`
  }

  /** One request with bounded retries; resolves with the final response (any status below 500 except 429). */
  async function request(method: string, pathOrUrl: string, init: { body?: unknown; accept?: string } = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${base}${pathOrUrl}`
    let delay = o.retryDelayMs
    for (let attempt = 1; ; attempt++) {
      let res: Response | undefined
      let failure: unknown
      try {
        res = await fetch(url, {
          method,
          headers: {
            authorization: `token ${o.token}`, accept: init.accept ?? 'application/json',
            ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
          redirect: 'manual',
          signal: AbortSignal.timeout(o.requestTimeoutMs),
        })
      } catch (err) {
        failure = err
      }
      const retryable = res === undefined || res.status === 429 || res.status >= 500
      if (!retryable) return res!
      if (attempt >= o.attempts) {
        if (res) return res
        const cause = failure as { cause?: { code?: string }; name?: string; message?: string }
        const what = cause?.name === 'TimeoutError' ? `timed out after ${o.requestTimeoutMs} ms` : cause?.cause?.code ?? cause?.message ?? String(failure)
        throw new HubApiError('CULL_HUB_UNREACHABLE', `${method} ${url}: ${what}`, undefined, { cause: failure })
      }
      const wait = res ? retryAfterMs(res, delay, o.maxDelayMs) : delay
      await res?.body?.cancel().catch(() => undefined)
      await sleep(wait)
      delay = Math.min(delay * 2, o.maxDelayMs)
    }
  }

  async function json(res: Response, what: string): Promise<unknown> {
    const length = Number(res.headers.get('content-length') ?? 0)
    if (length > MAX_BODY) throw new HubApiError('CULL_BAD_RESPONSE', `${what}: response too large (${length} bytes)`, res.status)
    const text = await res.text()
    try { return JSON.parse(text) } catch { throw new HubApiError('CULL_BAD_RESPONSE', `${what}: not JSON: ${text.slice(0, 120)}`, res.status) }
  }

  async function fail(res: Response, what: string): Promise<never> {
    const text = await res.text().catch(() => '')
    let message = text.slice(0, 200)
    try { message = String((JSON.parse(text) as { message?: unknown }).message ?? message) } catch { /* not JSON */ }
    const code = res.status === 403 ? 'CULL_FORBIDDEN' : res.status === 404 ? 'CULL_NOT_FOUND' : 'CULL_HUB_ERROR'
    throw new HubApiError(code, `${what}: ${res.status} ${message}`, res.status)
  }

  return {
    /** GET {url}/ : the hub's version (also proves the URL and that the hub answers). */
    async version(): Promise<string> {
      const res = await request('GET', '/')
      if (res.status !== 200) return fail(res, 'GET /')
      const body = await json(res, 'GET /') as { version?: unknown }
      if (typeof body?.version !== 'string') throw new HubApiError('CULL_BAD_RESPONSE', 'GET /: no version in the answer; is --url the hub API (…/hub/api)?')
      return body.version
    },

    /** Every user in `state` (ready | inactive), one page at a time. */
    async *users(state: 'ready' | 'inactive'): AsyncGenerator<UserModel[]> {
      let next: string | null = `/users?state=${state}${o.pageSize > 0 ? `&limit=${o.pageSize}` : ''}`
      const seen = new Set<string>()
      for (let page = 0; next !== null && page < MAX_PAGES; page++) {
        const res = await request('GET', next, { accept: PAGINATION_TYPE })
        if (res.status !== 200) return void await fail(res, `GET /users?state=${state}`)
        const body = await json(res, 'GET /users')
        if (Array.isArray(body)) return void (yield body as UserModel[]) // a hub without pagination
        const env = body as { items?: unknown; _pagination?: { next?: { url?: unknown } | null } }
        if (!Array.isArray(env?.items)) throw new HubApiError('CULL_BAD_RESPONSE', 'GET /users: expected a list or {"items": [...]}')
        yield env.items as UserModel[]
        next = nextPage(env._pagination?.next?.url)
        if (next !== null && seen.has(next)) throw new HubApiError('CULL_BAD_RESPONSE', `GET /users: the next page repeats: ${next}`)
        if (next !== null) seen.add(next)
      }
    },

    /** DELETE a server: 'stopped' (204), 'pending' (202: the stop continues), 'gone' (404). */
    async stopServer(user: string, server: string, remove: boolean): Promise<'stopped' | 'pending' | 'gone'> {
      const path = server === '' ? `/users/${encodeURIComponent(user)}/server` : `/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(server)}`
      const res = await request('DELETE', path, remove && server !== '' ? { body: { remove: true } } : {})
      const outcome = res.status === 204 || res.status === 200 ? 'stopped' : res.status === 202 ? 'pending' : res.status === 404 ? 'gone' : undefined
      if (outcome === undefined) return fail(res, `DELETE ${path}`)
      await res.body?.cancel().catch(() => undefined)
      return outcome
    },

    /** DELETE a user: true when deleted (204), false when already gone (404). */
    async deleteUser(user: string): Promise<boolean> {
      const res = await request('DELETE', `/users/${encodeURIComponent(user)}`)
      if (res.status === 204 || res.status === 200) { await res.body?.cancel().catch(() => undefined); return true }
      if (res.status === 404) { await res.body?.cancel().catch(() => undefined); return false }
      return fail(res, `DELETE /users/${user}`)
    },
  }
}

export type HubClient = ReturnType<typeof createHubClient>
