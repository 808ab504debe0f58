/**
 * createProxy: the public server (health check, routing, forwarding), the API server and their
 * lifecycle, for in-process use (tests, load tests) and for main.ts.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { createApiHandler } from './api.js'
import type { ProxyConfig, TlsFiles } from './config.js'
import { createErrorResponder, renderPlain } from './error-page.js'
import { createForwarder, type ForwarderStats } from './forward.js'
import { type Logger, logPath, silentLogger } from './log.js'
import { createProxyMetrics } from './metrics.js'
import { RouteTable } from './route-table.js'
import { RouteStore } from './route-store.js'
import { runningEmbeddedUrl } from '../../core/src/embedded-postgres.js'

export interface ProxyDeps {
  readonly log?: Logger
  /** Clock in ms; tests may pin it. */
  readonly now?: () => number
  /** Route-store mode: the database to use instead of the config's (tests). */
  readonly databaseUrl?: string
}

export interface RunningProxy {
  /** Public base URL, e.g. http://127.0.0.1:8000 */
  readonly url: string
  readonly apiUrl: string
  readonly port: number
  readonly apiPort: number
  readonly bootId: string
  /** The live routing table (read it; change it through the API). */
  readonly table: RouteTable
  /** Route-store mode only: where the table comes from. */
  readonly store: RouteStore | undefined
  stats(): ForwarderStats
  close(): Promise<void>
}

export async function createProxy(config: ProxyConfig, deps: ProxyDeps = {}): Promise<RunningProxy> {
  const log = deps.log ?? silentLogger()
  const now = deps.now ?? Date.now
  const bootId = randomUUID()
  const table = new RouteTable()
  if (config.defaultTarget !== undefined) table.add('/', { target: config.defaultTarget }, now())
  const errors = createErrorResponder({ errorTarget: config.errorTarget, errorPath: config.errorPath, insecure: config.insecure, log })
  const store = config.routesFromDb === undefined ? undefined : new RouteStore({
    connectionString: deps.databaseUrl ?? config.routesFromDb.databaseUrl ?? await runningEmbeddedUrl(config.routesFromDb.dataDir),
    table, now, log: log.child({ component: 'route-store' }),
    flushMs: config.activityFlushMs, resolutionMs: config.activityResolutionMs, refreshActivity: () => forwarder.sweep(),
  })
  const metrics = createProxyMetrics({ table, stats: () => forwarder.stats(), store: store && (() => store.stats()) })
  const forwarder = createForwarder(config, {
    table, log, now, respondError: (code, req, res) => errors.respond(code, req, res),
  })
  if (config.authToken === undefined) log.warn('CONFIGPROXY_AUTH_TOKEN is not set: the API accepts requests without a token')

  const publicServer = createServer(config.ssl, { keepAliveTimeout: config.keepAliveTimeoutMs }, (req, res) => {
    const started = process.hrtime.bigint()
    res.once('finish', () => metrics.observeWeb(res.statusCode, started))
    if (req.url === '/_chp_healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ status: 'OK', bootId }))
      return
    }
    const path = requestPath(req, config.hostRouting)
    if (path === undefined) return renderPlain(400, res)
    const route = table.match(path)
    if (route === undefined) {
      log.debug({ method: req.method, path: logPath(req.url) }, 'no route')
      return errors.respond(404, req, res)
    }
    if (!config.includePrefix) req.url = stripSegments(req.url ?? '/', route.depth)
    if (config.accessLog) res.once('finish', () => log.info({ method: req.method, path: logPath(req.url), status: res.statusCode, target: route.target }, 'proxied'))
    forwarder.web(req, res, route)
  })
  publicServer.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const path = requestPath(req, config.hostRouting)
    const route = path === undefined ? undefined : table.match(path)
    if (route === undefined) {
      socket.end(`HTTP/1.1 ${path === undefined ? '400 Bad Request' : '404 Not Found'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
      return
    }
    if (!config.includePrefix) req.url = stripSegments(req.url ?? '/', route.depth)
    forwarder.ws(req, socket, head, route)
  })

  const apiServer = createServer(config.apiSsl, { keepAliveTimeout: 5000 }, createApiHandler({
    table, authToken: config.authToken, bootId, log, hostRouting: config.hostRouting, now,
    refreshActivity: () => forwarder.sweep(),
    readOnly: store === undefined ? undefined
      : 'routes come from the database (--routes-from-db): a server\'s route follows its state, change it through the hub',
    renderMetrics: () => metrics.render(),
    onResponse: status => metrics.observeApi(status),
  }))
  const servers: Server[] = [publicServer, apiServer]
  const sweepMs = Math.min(30_000, Math.max(50, config.wsIdleTimeoutMs > 0 ? Math.floor(config.wsIdleTimeoutMs / 4) : 10_000))
  const sweeper = setInterval(() => forwarder.sweep(), sweepMs)
  sweeper.unref()

  const close = async (): Promise<void> => {
    clearInterval(sweeper)
    await store?.close()
    forwarder.close()
    errors.close()
    metrics.close()
    await Promise.all(servers.map(s => new Promise<void>(resolve => {
      s.close(() => resolve())
      s.closeAllConnections()
    })))
  }
  try {
    // the whole table before the first request: a proxy that starts never answers 404 for a running server
    await store?.start()
    const port = await listen(publicServer, config.port, config.ip, config.listenBacklog)
    const apiPort = await listen(apiServer, config.apiPort, config.apiIp)
    if (config.redirectPort !== undefined) {
      const redirect = http.createServer((req, res) => redirectToHttps(req, res, config.redirectTo ?? port))
      servers.push(redirect)
      await listen(redirect, config.redirectPort, config.ip)
    }
    if (config.metricsPort !== undefined) {
      const metricsServer = http.createServer((req, res) => { void metrics.serve(req, res) })
      servers.push(metricsServer)
      await listen(metricsServer, config.metricsPort, config.metricsIp)
    }
    log.info({ port, apiPort, bootId }, 'proxy listening')
    return {
      url: baseUrl(publicServer, config.ssl !== undefined),
      apiUrl: baseUrl(apiServer, config.apiSsl !== undefined),
      port, apiPort, bootId, table, store,
      stats: () => forwarder.stats(),
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

function createServer(
  tls: TlsFiles | undefined, options: { keepAliveTimeout: number },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const server = tls === undefined
    ? http.createServer({ keepAlive: true, keepAliveTimeout: options.keepAliveTimeout }, handler)
    : https.createServer({ ...readTls(tls), keepAlive: true, keepAliveTimeout: options.keepAliveTimeout }, handler)
  server.keepAliveTimeout = options.keepAliveTimeout
  return server
}

function readTls(tls: TlsFiles): https.ServerOptions {
  return {
    key: readFileSync(tls.key),
    cert: readFileSync(tls.cert),
    ca: tls.ca === undefined ? undefined : readFileSync(tls.ca),
    requestCert: tls.requestCert,
    rejectUnauthorized: tls.rejectUnauthorized,
    ciphers: tls.ciphers,
    secureProtocol: tls.secureProtocol,
    dhparam: tls.dhparam === undefined ? undefined : readFileSync(tls.dhparam),
  }
}

/** '' (CHP's default) = all interfaces. Resolves with the bound port. `backlog`: Node's default (511) when not given. */
function listen(server: Server, port: number, host: string, backlog?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen({ port, host: host === '' ? undefined : host, ...(backlog !== undefined ? { backlog } : {}) }, () => {
      server.removeListener('error', onError)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function baseUrl(server: Server, secure: boolean): string {
  const { address, port } = server.address() as AddressInfo
  const host = address === '::' || address === '0.0.0.0' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address
  return `${secure ? 'https' : 'http'}://${host}:${port}`
}

/**
 * The decoded path to route on (CHP: decodeURIComponent of the WHATWG pathname, so dot segments are
 * resolved as the upstream will resolve them). Plain paths skip the URL parser. undefined = undecodable.
 */
export function requestPath(req: IncomingMessage, hostRouting: boolean): string | undefined {
  const raw = req.url ?? '/'
  let path: string
  if (raw.charCodeAt(0) === 47 && !/[%\\#]|\/\.|^\/\//.test(raw)) {
    const q = raw.indexOf('?')
    path = q === -1 ? raw : raw.slice(0, q)
  } else {
    try {
      path = decodeURIComponent(new URL(raw, 'http://x').pathname)
    } catch {
      return undefined
    }
  }
  if (!hostRouting) return path
  const host = (req.headers.host ?? '').split(':')[0]
  return `/${host}${path}`
}

/** --no-include-prefix: drop the first `depth` path segments of the raw URL, keep the query. */
export function stripSegments(url: string, depth: number): string {
  if (depth === 0) return url
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q)
  let at = 0
  for (let i = 0; i < depth && at !== -1; i++) {
    while (path.charCodeAt(at) === 47) at++
    at = path.indexOf('/', at)
  }
  const rest = at === -1 ? '/' : path.slice(at)
  return `${rest}${query}`
}

function redirectToHttps(req: IncomingMessage, res: ServerResponse, port: number): void {
  const host = (req.headers.host ?? 'localhost').split(':')[0]
  res.writeHead(301, { Location: `https://${host}:${port}${req.url ?? '/'}` })
  res.end()
}
