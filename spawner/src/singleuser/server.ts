/**
 * The built-in single-user server as a library: `createSingleUserServer(options)` binds, talks to
 * the hub per contract §4 and serves a small page, `api/status` and a kernel-like websocket echo.
 * No process globals (no env, argv or signal handlers), so one process can host thousands.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { ActivityReporter, isoMicros, nowMicros, type RetryPolicy } from './activity.js'
import { AUTH_COOKIE_MAX_AGE_S, HubAuth, SESSION_COOKIE, type AuthResult } from './auth.js'
import type { SingleUserConfig } from './config.js'
import { CookieSealer, clearCookie, parseCookies, serializeCookie } from './cookies.js'
import { SingleUserError } from './errors.js'
import { HUB_PROTOCOL_VERSION, HubClient, type Fetch } from './hub-client.js'
import { renderErrorPage, renderServerPage } from './pages.js'

export interface SingleUserServerOptions extends SingleUserConfig {
  readonly log: Logger
  /** Used for every call to the hub; default the global fetch. */
  readonly fetch?: Fetch
  /** Sleeps between version-check attempts; default 2, 4, 8, 16, 16 s (as jupyterhub-singleuser). */
  readonly hubRetryDelaysMs?: readonly number[]
  /** Backoff of failed activity reports; default 1 s start, 15 s max, 60 s total. */
  readonly activityRetry?: RetryPolicy
  /** How long a token check is cached; default 300 s. */
  readonly authCacheTtlMs?: number
  /** Aborting gives up the startup version check. */
  readonly signal?: AbortSignal
}

export interface SingleUserServer {
  /** Where it listens, with the prefix: `http://127.0.0.1:8888/user/alice/`. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

const STATE_MAX_AGE_S = 600
const WS_MAX_PAYLOAD = 16 * 1024 * 1024
const KERNEL_CHANNELS = /^api\/kernels\/([^/]+)\/channels$/

/** Check the hub, start reporting activity, listen. Rejects if the hub is unreachable or the bind fails. */
export async function createSingleUserServer(o: SingleUserServerOptions): Promise<SingleUserServer> {
  const log = o.log
  const client = new HubClient({ ...o, log })
  await client.checkVersion(o.hubRetryDelaysMs ?? [2000, 4000, 8000, 16000, 16000], o.signal)
  const sealer = new CookieSealer()
  const auth = new HubAuth({ ...o, client, sealer, cacheTtlMs: o.authCacheTtlMs })
  const activity = new ActivityReporter({ client, url: o.activityUrl, serverName: o.serverName, intervalMs: o.activityIntervalMs, retry: o.activityRetry, log })
  const started = isoMicros(nowMicros())
  const callbackPath = new URL(o.oauthCallbackUrl, 'http://placeholder').pathname
  const stateCookie = `${o.clientId}-oauth-state`
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD })
  let port = o.port

  const ctx: Ctx = { o, log, client, auth, sealer, activity, started, callbackPath, stateCookie, wss, port: () => port, landing: landingPath(o) }
  const server = createServer((req, res) => {
    handleRequest(ctx, req, res).catch(err => sendError(ctx, req, res, err))
  })
  server.on('upgrade', (req, socket: Socket, head) => {
    socket.on('error', () => socket.destroy())
    handleUpgrade(ctx, req, socket, head).catch(err => {
      log.warn({ err: (err as Error).message }, 'websocket upgrade failed')
      rejectUpgrade(socket, err instanceof SingleUserError && err.code === 'SINGLEUSER_HUB_UNAVAILABLE' ? 502 : 500)
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve() })
  })
  port = (server.address() as { port: number }).port
  activity.start()
  const host = o.host.includes(':') ? `[${o.host}]` : o.host
  log.info({ host: o.host, port, prefix: o.prefix }, 'single-user server listening')
  let closing: Promise<void> | undefined
  return {
    url: `http://${host}:${port}${o.prefix}`,
    port,
    close: () => closing ??= (async () => {
      await activity.stop()
      for (const ws of wss.clients) ws.terminate()
      await new Promise<void>(resolve => { server.close(() => resolve()); server.closeAllConnections() })
    })(),
  }
}

interface Ctx {
  readonly o: SingleUserServerOptions
  readonly log: Logger
  readonly client: HubClient
  readonly auth: HubAuth
  readonly sealer: CookieSealer
  readonly activity: ActivityReporter
  readonly started: string
  readonly callbackPath: string
  readonly stateCookie: string
  readonly wss: WebSocketServer
  readonly port: () => number
  /** Where the bare prefix redirects (JUPYTERHUB_DEFAULT_URL under the prefix); undefined = show the page there. */
  readonly landing: string | undefined
}

/** `<prefix><default url>`, as jupyter_server's url_path_join(base_url, default_url); none for '/' (it would loop). */
function landingPath(o: SingleUserServerOptions): string | undefined {
  if (o.defaultUrl === undefined) return undefined
  const target = o.prefix + o.defaultUrl.replace(/^\/+/, '')
  return target === o.prefix ? undefined : target
}

/** Parse the request target; `undefined` for anything but origin-form (`/path?query`). */
function requestUrl(req: IncomingMessage): URL | undefined {
  if (!req.url?.startsWith('/')) return undefined
  try { return new URL(`http://placeholder${req.url}`) } catch { return undefined }
}

async function handleRequest(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('X-JupyterHub-Version', HUB_PROTOCOL_VERSION)
  req.resume() // no endpoint reads a body; drain it so keep-alive works
  const url = requestUrl(req)
  if (!url) return sendJson(res, 400, { message: 'Bad Request', reason: 'invalid request target' })
  ctx.log.debug({ method: req.method, path: url.pathname }, 'request')
  if (!url.pathname.startsWith(ctx.o.prefix)) return sendText(res, 404, 'Not Found')
  if (url.pathname === ctx.callbackPath) return oauthCallback(ctx, req, res, url)
  const rest = url.pathname.slice(ctx.o.prefix.length)
  const isApi = rest === 'api' || rest.startsWith('api/')
  const isRead = req.method === 'GET' || req.method === 'HEAD'
  // jupyter_server's root handler: redirect to the default URL (query kept) before any auth, as it does.
  if (rest === '' && isRead && ctx.landing) return void res.writeHead(302, { Location: ctx.landing + url.search }).end()
  const result = await ctx.auth.authenticate(url, req.headers)
  if (!result.identity) {
    // 403 from the hub for our cookie: forget the cookie (on the right path, unlike 3.0's quirk).
    if (result.via === 'cookie') res.appendHeader('Set-Cookie', clearCookie(ctx.o.clientId, ctx.o.prefix))
    if (isApi || !isRead) return sendJson(res, 403, { message: 'Forbidden', reason: null })
    return redirectToOAuth(ctx, req, res, url)
  }
  if (!result.allowed) return forbidden(res, isApi, `${result.identity.name} may not use the server of ${ctx.o.user}`)
  ctx.activity.touch()
  if (!isRead) return sendJson(res, 405, { message: 'Method Not Allowed', reason: null })
  if (rest === 'api') return sendJson(res, 200, { version: HUB_PROTOCOL_VERSION })
  if (rest === 'api/status') {
    return sendJson(res, 200, { started: ctx.started, last_activity: ctx.activity.lastActivity, connections: ctx.wss.clients.size, kernels: 0 })
  }
  if (isApi) return sendJson(res, 404, { message: 'Not Found', reason: null })
  sendHtml(res, 200, renderServerPage({
    user: ctx.o.user, serverName: ctx.o.serverName, viewer: result.identity.name, host: ctx.o.host,
    port: ctx.port(), pid: process.pid, startedAt: ctx.started, prefix: ctx.o.prefix,
  }))
}

/**
 * 302 to the hub's authorize endpoint with a fresh state, remembered in a state cookie. When a
 * state cookie is already pending (two tabs logging in at once), a suffixed one is used and its
 * name recorded in the state as `cookie_name`, as HubOAuth does, so neither tab breaks the other.
 */
function redirectToOAuth(ctx: Ctx, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const pending = parseCookies(req.headers.cookie).has(ctx.stateCookie)
  const cookieName = pending ? `${ctx.stateCookie}-${randomUUID().slice(0, 8)}` : ctx.stateCookie
  const fields = { uuid: randomUUID().replaceAll('-', ''), next_url: url.pathname + url.search, ...(pending ? { cookie_name: cookieName } : {}) }
  const state = Buffer.from(JSON.stringify(fields)).toString('base64url')
  const query = new URLSearchParams({ client_id: ctx.o.clientId, redirect_uri: ctx.o.oauthCallbackUrl, response_type: 'code', state })
  res.appendHeader('Set-Cookie', serializeCookie(cookieName, ctx.sealer.seal(cookieName, state, STATE_MAX_AGE_S), { path: ctx.o.prefix, maxAgeS: STATE_MAX_AGE_S }))
  res.writeHead(302, { Location: `${ctx.o.baseUrl}hub/api/oauth2/authorize?${query}` }).end()
}

/** `<prefix>oauth_callback?code&state`: check state, exchange the code, check the token, set our cookie. */
async function oauthCallback(ctx: Ctx, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const code = url.searchParams.get('code')
  const state = url.searchParams.get('state')
  if (!code || !state) return sendHtml(res, 400, renderErrorPage(400, 'OAuth callback without code or state'))
  const cookieName = stateCookieOf(state, ctx.stateCookie)
  const expected = ctx.sealer.unseal(cookieName, parseCookies(req.headers.cookie).get(cookieName))
  if (expected === undefined || expected !== state) return sendHtml(res, 400, renderErrorPage(400, 'OAuth state mismatch'))
  const token = await ctx.client.exchangeCode(code)
  if (token === undefined) return sendHtml(res, 403, renderErrorPage(403, 'The hub refused the OAuth code'))
  const result: AuthResult = await ctx.auth.authenticate(new URL('http://placeholder/'), { authorization: `token ${token}`, cookie: req.headers.cookie })
  if (!result.identity || !result.allowed) {
    return forbidden(res, false, `${result.identity?.name ?? 'this token'} may not use the server of ${ctx.o.user}`)
  }
  ctx.activity.touch()
  res.setHeader('Set-Cookie', [
    clearCookie(cookieName, ctx.o.prefix),
    serializeCookie(ctx.o.clientId, ctx.sealer.seal(ctx.o.clientId, token, AUTH_COOKIE_MAX_AGE_S), { path: ctx.o.prefix, maxAgeS: AUTH_COOKIE_MAX_AGE_S }),
  ])
  res.writeHead(302, { Location: safeNext(nextUrlOf(state), ctx.o.prefix) }).end()
}

function stateField(state: string, field: 'next_url' | 'cookie_name'): unknown {
  try { return (JSON.parse(Buffer.from(state, 'base64url').toString('utf8')) as Record<string, unknown>)[field] } catch { return undefined }
}

const nextUrlOf = (state: string): unknown => stateField(state, 'next_url')

/** The state cookie named in the state, if it is one of ours (`<client>-oauth-state[-suffix]`). */
function stateCookieOf(state: string, base: string): string {
  const name = stateField(state, 'cookie_name')
  return typeof name === 'string' && name.startsWith(`${base}-`) && /^[0-9a-f]{8}$/.test(name.slice(base.length + 1)) ? name : base
}

/** Only host-relative URLs inside our prefix: never an open redirect (`//evil`, `/\evil`). */
function safeNext(next: unknown, prefix: string): string {
  return typeof next === 'string' && next.startsWith(prefix) && !next.startsWith('//') && !next.includes('\\') ? next : prefix
}

async function handleUpgrade(ctx: Ctx, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const url = requestUrl(req)
  const rest = url?.pathname.startsWith(ctx.o.prefix) ? url.pathname.slice(ctx.o.prefix.length) : undefined
  if (!url || rest === undefined || !KERNEL_CHANNELS.test(rest)) return rejectUpgrade(socket, 404)
  const result = await ctx.auth.authenticate(url, req.headers)
  if (!result.identity || !result.allowed) return rejectUpgrade(socket, 403)
  // A cookie rides along on cross-site websocket handshakes too: with cookie auth, the page must be ours.
  if (result.via === 'cookie' && !sameOrigin(req)) return rejectUpgrade(socket, 403)
  if (socket.destroyed) return
  ctx.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
    ctx.activity.touch()
    ws.on('message', (data, isBinary) => {
      ctx.activity.touch()
      ws.send(data, { binary: isBinary })
    })
    ws.on('error', () => ws.terminate())
  })
}

function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin
  if (!origin) return true
  try { return new URL(origin).host === req.headers.host } catch { return false }
}

function rejectUpgrade(socket: Socket, status: 403 | 404 | 500 | 502): void {
  if (socket.destroyed) return
  const text = { 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 502: 'Bad Gateway' }[status]
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`)
}

function forbidden(res: ServerResponse, isApi: boolean, message: string): void {
  if (isApi) return sendJson(res, 403, { message: 'Forbidden', reason: message })
  sendHtml(res, 403, renderErrorPage(403, message))
}

function sendError(ctx: Ctx, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const code = err instanceof SingleUserError ? err.code : 'SINGLEUSER_INTERNAL'
  const status = code === 'SINGLEUSER_HUB_UNAVAILABLE' ? 502 : 500
  ctx.log.error({ code, err: (err as Error).message, path: requestUrl(req)?.pathname }, 'request failed')
  if (res.headersSent) return void res.destroy()
  sendJson(res, status, { message: status === 502 ? 'Bad Gateway' : 'Internal Server Error', reason: code })
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' }).end(text)
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'self'",
  }).end(html)
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text)
}

export { SESSION_COOKIE }
