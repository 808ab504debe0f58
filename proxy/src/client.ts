/**
 * The typed REST client the hub uses to talk to the proxy (ours or CHP: same wire API, plus our
 * bulk PUT). Imports nothing else of the proxy's, so the hub never loads the forwarding library.
 * Keep-alive, a per-call timeout, bounded retries of 5xx and connection errors, and restart
 * detection through the `x-fleethub-proxy-boot` response header.
 */
import http from 'node:http'
import https from 'node:https'

export interface ProxyRouteEntry { target: string; last_activity?: string; [data: string]: unknown }
export interface ProxyClientOptions { apiUrl: string; authToken: string; timeoutMs?: number /* default 10000 */ }
export interface ProxyClient {
  getRoutes(options?: { inactiveSince?: Date }): Promise<Record<string, ProxyRouteEntry>>
  /** POST; path like '/user/alice' or '/user/alice/' or '/'. */
  addRoute(path: string, target: string, data?: Record<string, unknown>): Promise<void>
  /** false when the proxy said 404. */
  deleteRoute(path: string): Promise<boolean>
  /** PUT /api/routes: replace the whole table atomically (fleethub proxies only). */
  replaceRoutes(routes: Record<string, { target: string; [data: string]: unknown }>): Promise<void>
  /**
   * A cheap call (one missing route, 404) whose only purpose is the boot id in its answer: call it
   * every second or so to notice a restarted proxy within that time. Returns the boot id seen.
   */
  ping(): Promise<string | undefined>
  /** The boot id seen on the last response, undefined before the first call. */
  readonly bootId: string | undefined
  /** Called (once per change) when a response carries a boot id different from the previous one: the proxy restarted and lost its table. */
  onRestart(listener: (bootId: string) => void): void
  close(): void
}

export type ProxyClientErrorCode = 'PROXY_CLIENT_HTTP' | 'PROXY_CLIENT_UNREACHABLE' | 'PROXY_CLIENT_TIMEOUT' | 'PROXY_CLIENT_BAD_RESPONSE'

export class ProxyClientError extends Error {
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number
  readonly code: ProxyClientErrorCode
  constructor(code: ProxyClientErrorCode, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProxyClientError'
    this.code = code
    this.status = status
  }
}

const BOOT_HEADER = 'x-fleethub-proxy-boot'
/** Retry delays for 5xx and connection errors; bounded in count, and never past the call's timeout. */
const RETRY_DELAYS_MS = [100, 250, 500, 1000]

interface Reply { status: number; body: string; bootId: string | undefined }

/** CHP's API path for a route: '/api/routes' + each segment percent-escaped, trailing '/' dropped (except '/'). */
export function routeApiPath(path: string): string {
  let p = path.startsWith('/') ? path : `/${path}`
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
  const escaped = p.split('/').map(segment => encodeURIComponent(segment).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
  return `/api/routes${escaped.join('/')}`
}

export function createProxyClient(options: ProxyClientOptions): ProxyClient {
  const base = new URL(options.apiUrl)
  const basePath = base.pathname.replace(/\/+$/, '')
  const secure = base.protocol === 'https:'
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 10, maxFreeSockets: 10, timeout: 4000 })
    : new http.Agent({ keepAlive: true, maxSockets: 10, maxFreeSockets: 10, timeout: 4000 })
  const timeoutMs = options.timeoutMs ?? 10_000
  const listeners: Array<(bootId: string) => void> = []
  let bootId: string | undefined

  function noteBoot(id: string | undefined): void {
    if (id === undefined || id === bootId) return
    const previous = bootId
    bootId = id
    if (previous !== undefined) for (const listener of listeners) listener(id)
  }

  function once(method: string, path: string, body: string | undefined, deadline: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { Authorization: `token ${options.authToken}`, Accept: 'application/json' }
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json'
        headers['Content-Length'] = Buffer.byteLength(body)
      }
      const req = (secure ? https : http).request({
        protocol: base.protocol, hostname: base.hostname.replace(/^\[|\]$/g, ''), port: base.port || (secure ? 443 : 80),
        path: `${basePath}${path}`, method, headers, agent,
      })
      const timer = setTimeout(() => {
        req.destroy(new ProxyClientError('PROXY_CLIENT_TIMEOUT', 0, `${method} ${path}: no answer within ${timeoutMs} ms`))
      }, Math.max(1, deadline - Date.now()))
      req.on('response', res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          clearTimeout(timer)
          const id = res.headers[BOOT_HEADER]
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), bootId: typeof id === 'string' ? id : undefined })
        })
        res.on('error', err => { clearTimeout(timer); reject(err) })
      })
      req.on('error', err => { clearTimeout(timer); reject(err) })
      req.end(body)
    })
  }

  async function call(method: string, path: string, body?: unknown): Promise<Reply> {
    const deadline = Date.now() + timeoutMs
    const text = body === undefined ? undefined : JSON.stringify(body)
    for (let attempt = 0; ; attempt++) {
      let failure: ProxyClientError
      try {
        const reply = await once(method, path, text, deadline)
        noteBoot(reply.bootId)
        if (reply.status < 500) return reply
        failure = new ProxyClientError('PROXY_CLIENT_HTTP', reply.status, `${method} ${path}: proxy answered ${reply.status} ${reply.body.slice(0, 200)}`)
      } catch (err) {
        if (err instanceof ProxyClientError) throw err
        failure = new ProxyClientError('PROXY_CLIENT_UNREACHABLE', 0, `${method} ${path}: ${(err as Error).message}`, { cause: err })
      }
      const delay = RETRY_DELAYS_MS[attempt]
      if (delay === undefined || Date.now() + delay >= deadline) throw failure
      await new Promise(resolve => setTimeout(resolve, delay))
    }
  }

  function expect(reply: Reply, method: string, path: string, ok: number[]): void {
    if (!ok.includes(reply.status)) {
      throw new ProxyClientError('PROXY_CLIENT_HTTP', reply.status, `${method} ${path}: proxy answered ${reply.status} ${reply.body.slice(0, 200)}`)
    }
  }

  return {
    async ping() {
      await call('GET', '/api/routes/.fleethub-ping')
      return bootId
    },
    async getRoutes(opts = {}) {
      const query = opts.inactiveSince === undefined ? '' : `?inactive_since=${encodeURIComponent(opts.inactiveSince.toISOString())}`
      const reply = await call('GET', `/api/routes${query}`)
      expect(reply, 'GET', '/api/routes', [200])
      try {
        return JSON.parse(reply.body) as Record<string, ProxyRouteEntry>
      } catch (err) {
        throw new ProxyClientError('PROXY_CLIENT_BAD_RESPONSE', reply.status, 'GET /api/routes: body is not JSON', { cause: err })
      }
    },
    async addRoute(path, target, data = {}) {
      const apiPath = routeApiPath(path)
      expect(await call('POST', apiPath, { ...data, target }), 'POST', apiPath, [201])
    },
    async deleteRoute(path) {
      const apiPath = routeApiPath(path)
      const reply = await call('DELETE', apiPath)
      if (reply.status === 404) return false
      expect(reply, 'DELETE', apiPath, [204])
      return true
    },
    async replaceRoutes(routes) {
      expect(await call('PUT', '/api/routes', routes), 'PUT', '/api/routes', [200, 204])
    },
    get bootId() {
      return bootId
    },
    onRestart(listener) {
      listeners.push(listener)
    },
    close() {
      agent.destroy()
    },
  }
}
