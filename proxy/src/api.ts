/**
 * The REST API on the API port, CHP 5.3 compatible (contract §2.3): exact statuses, texts and quirks,
 * plus fleethub's bulk `PUT /api/routes`. Every response carries `x-fleethub-proxy-boot`, so a client
 * notices a restarted (empty) proxy on its next call.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from './log.js'
import { logPath } from './log.js'
import { type RouteTable, routeJsonText } from './route-table.js'

export const BOOT_HEADER = 'x-fleethub-proxy-boot'
/** A route body is a few hundred bytes; 1 MiB leaves room for generous extra data. */
export const ROUTE_BODY_LIMIT = 1024 * 1024
/** PUT carries the whole table: 64 MiB is ~300k routes of hub-sized data. */
export const TABLE_BODY_LIMIT = 64 * 1024 * 1024

const ROUTES_RE = /^\/api\/routes(\/.*)?$/

export interface ApiDeps {
  readonly table: RouteTable
  readonly authToken: string | undefined
  readonly bootId: string
  readonly log: Logger
  /** When set, routes get `host` = first path segment (CHP's --host-routing). */
  readonly hostRouting: boolean
  readonly now: () => number
  /** Called before routes are read, so websocket activity sampled lazily is current. */
  readonly refreshActivity: () => void
  /** Set in route-store mode: writes answer 409 with this reason. */
  readonly readOnly?: string
  /** Serves GET /metrics (no token: see metrics.ts); undefined -> 404 as CHP's API port. */
  readonly renderMetrics?: () => Promise<{ contentType: string, body: string }>
  readonly onResponse?: (status: number) => void
}

type Handler = (req: IncomingMessage, res: ServerResponse, path: string | undefined, deps: ApiDeps) => void | Promise<void>

/** Returns the request listener of the API server. */
export function createApiHandler(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    res.setHeader(BOOT_HEADER, deps.bootId)
    res.on('finish', () => {
      deps.onResponse?.(res.statusCode)
      deps.log.debug({ method: req.method, path: logPath(req.url), status: res.statusCode }, 'api request')
    })
    handleApi(req, res, deps).catch((err: unknown) => {
      deps.log.error({ err, method: req.method, path: logPath(req.url) }, 'api handler failed')
      if (!res.headersSent) sendText(res, 500, 'Internal Server Error')
      else res.destroy()
    })
  }
}

async function handleApi(req: IncomingMessage, res: ServerResponse, deps: ApiDeps): Promise<void> {
  const pathname = logPath(req.url)
  if (pathname === '/metrics' && req.method === 'GET' && deps.renderMetrics !== undefined) {
    const { contentType, body } = await deps.renderMetrics()
    res.writeHead(200, { 'Content-Type': contentType })
    res.end(body)
    return
  }
  const m = ROUTES_RE.exec(pathname)
  if (m === null) return sendText(res, 404, 'Not Found')
  const handler = HANDLERS[req.method ?? ''] as Handler | undefined
  // CHP checks the method before the token: PUT /api/routes/x is 405 even without a token.
  if (handler === undefined || (req.method === 'PUT' && m[1] !== undefined && m[1] !== '/')) {
    return sendText(res, 405, 'Method not supported')
  }
  if (!authorized(req, deps)) {
    deps.log.debug('rejecting api request: bad or missing token')
    res.writeHead(403)
    res.end()
    drain(req)
    return
  }
  if (deps.readOnly !== undefined && req.method !== 'GET') {
    drain(req)
    return sendText(res, 409, deps.readOnly)
  }
  let path: string | undefined
  try {
    path = m[1] === undefined ? undefined : decodeURIComponent(m[1])
  } catch {
    return sendText(res, 400, `Invalid path encoding '${m[1]}'`)
  }
  await handler(req, res, path, deps)
}

const HANDLERS: Readonly<Record<string, Handler>> = {
  GET: getRoutes,
  POST: postRoute,
  DELETE: deleteRoute,
  PUT: putRoutes,
}

/** CHP: the header must contain `token <value>`; anything else (Bearer, no header) is refused. */
function authorized(req: IncomingMessage, deps: ApiDeps): boolean {
  if (deps.authToken === undefined) return true
  const match = /token\s+(\S+)/.exec(req.headers.authorization ?? '')
  return match !== null && match[1] === deps.authToken
}

function getRoutes(req: IncomingMessage, res: ServerResponse, path: string | undefined, deps: ApiDeps): void {
  deps.refreshActivity()
  if (path !== undefined && path.length > 0 && path !== '/') {
    const route = deps.table.get(path)
    if (route === undefined) {
      res.writeHead(404)
      res.end()
      return
    }
    return sendJsonText(res, 200, routeJsonText(route))
  }
  const params = new URL(req.url ?? '/', 'http://x').searchParams
  const raw = params.get('inactiveSince') || params.get('inactive_since')
  let before = Infinity
  if (raw) {
    before = Date.parse(raw)
    if (!Number.isFinite(before)) return sendText(res, 400, `Invalid datestamp '${raw}' must be ISO8601.`)
  }
  const parts: string[] = []
  for (const route of deps.table.routes()) {
    if (route.lastActivity < before) parts.push(`${JSON.stringify(route.path)}:${routeJsonText(route)}`)
  }
  sendJsonText(res, 200, `{${parts.join(',')}}`)
}

async function postRoute(req: IncomingMessage, res: ServerResponse, path: string | undefined, deps: ApiDeps): Promise<void> {
  const body = await readJson(req, res, ROUTE_BODY_LIMIT)
  if (body === NO_BODY) return
  const data = (body ?? {}) as Record<string, unknown>
  const problem = checkRouteData(data)
  if (problem !== undefined) {
    deps.log.warn({ path }, 'bad route body')
    return sendText(res, 400, problem)
  }
  const key = path === undefined || path === '' ? '/' : path
  const stored = withHost(key, data, deps)
  const route = deps.table.add(key, stored, deps.now())
  deps.log.info({ path: route.path, target: route.target }, 'route added')
  res.writeHead(201)
  res.end()
}

function deleteRoute(_req: IncomingMessage, res: ServerResponse, path: string | undefined, deps: ApiDeps): void {
  const removed = deps.table.remove(path ?? '/')
  if (removed) deps.log.info({ path }, 'route removed')
  res.writeHead(removed ? 204 : 404)
  res.end()
}

/**
 * fleethub's bulk replace: body = an object shaped as GET's answer. Everything is validated before the
 * table changes, so a bad entry leaves the table as it was. A route that exists keeps the newer of its
 * own and the given `last_activity`.
 */
async function putRoutes(req: IncomingMessage, res: ServerResponse, _path: string | undefined, deps: ApiDeps): Promise<void> {
  const body = await readJson(req, res, TABLE_BODY_LIMIT)
  if (body === NO_BODY) return
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return sendText(res, 400, 'Body must be a JSON object of path -> route')
  }
  deps.refreshActivity()
  const now = deps.now()
  const entries: Array<[string, Record<string, unknown>, number]> = []
  for (const [path, value] of Object.entries(body as Record<string, unknown>)) {
    const data = value as Record<string, unknown>
    const problem = value === null || typeof value !== 'object' || Array.isArray(value)
      ? 'must be an object' : checkRouteData(data)
    if (problem !== undefined) return sendText(res, 400, `Route '${path}': ${problem}`)
    const { last_activity: given, ...rest } = data
    const givenMs = typeof given === 'string' ? Date.parse(given) : NaN
    const existing = deps.table.get(path)
    const lastActivity = Math.max(existing?.lastActivity ?? -Infinity, Number.isFinite(givenMs) ? givenMs : -Infinity)
    entries.push([path, withHost(path, rest, deps), Number.isFinite(lastActivity) ? lastActivity : now])
  }
  deps.table.replaceAll(entries)
  deps.log.info({ routes: deps.table.size }, 'routing table replaced')
  sendJson(res, 200, { routes: deps.table.size })
}

/** undefined when fine, else the 400 text. CHP only checks the type; we also refuse what cannot be proxied. */
function checkRouteData(data: Record<string, unknown>): string | undefined {
  if (typeof data.target !== 'string') return "Must specify 'target' as string"
  let url: URL
  try {
    url = new URL(data.target)
  } catch {
    return `Invalid target '${data.target}': must be an absolute http(s) URL`
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `Invalid target '${data.target}': must be an absolute http(s) URL`
  return undefined
}

function withHost(path: string, data: Record<string, unknown>, deps: ApiDeps): Record<string, unknown> {
  if (!deps.hostRouting || path === '/' || path === '') return data
  const key = path.startsWith('/') ? path : `/${path}`
  return { ...data, host: key.split('/')[1] }
}

const NO_BODY = Symbol('no body')

/**
 * Read and parse a JSON body of at most `limit` bytes. The Content-Type is ignored (the hub labels its
 * JSON as form data). Answers 413/400 itself and returns NO_BODY in that case.
 */
async function readJson(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) {
    tooLarge(req, res, limit)
    return NO_BODY
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      tooLarge(req, res, limit)
      return NO_BODY
    }
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text)
  } catch (err) {
    sendText(res, 400, `Body not valid JSON: ${String(err)}`)
    return NO_BODY
  }
}

function tooLarge(req: IncomingMessage, res: ServerResponse, limit: number): void {
  res.setHeader('Connection', 'close')
  sendText(res, 413, `Body too large: limit is ${limit} bytes`)
  // Stop reading the rest: the connection closes once the answer is out.
  res.on('finish', () => req.destroy())
}

/** Discard an unread body so the connection can be reused. */
function drain(req: IncomingMessage): void {
  if (!req.readableEnded) req.resume()
}

/** CHP's `fail`: status line, the text, no Content-Type. */
function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status)
  res.end(text)
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendJsonText(res, status, JSON.stringify(value))
}

function sendJsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(text)
}
