/**
 * The data plane: forwards HTTP requests and websocket upgrades to a route's target. This is the ONLY
 * file that imports the forwarding library, so it can be swapped here alone.
 *
 * Library choice, by measurement (bench-results/proxy-2026-11-28/report.md, "Forwarding engine"):
 * - http-proxy 1.18.1 (unmaintained since 2020) fails leaks.test.ts: clients that vanish mid-request
 *   leave their upstream sockets open for good (22 socket fds vs a baseline of 4 after 30 clients),
 *   the ephemeral-port exhaustion of CHP #557. Measured from a scratch copy, never installed here.
 * - http-proxy-3 1.23.3 (CHP 5.x's engine) passes every leak test. Throughput of the two was within
 *   the noise of this shared 2-core machine (one alternating run had http-proxy 1.8x ahead, the next
 *   had them level).
 * So http-proxy-3 it is, for websockets and for the options only a library implements
 * (--auto-rewrite, --change-origin, --protocol-rewrite, a target with a path). Plain HTTP, which is
 * all JupyterHub configures, goes through our own lean path below (node:http + the bounded
 * keep-alive agent): it passes the same leak tests and the JupyterHub test, and measured 1.1x to 3x
 * http-proxy-3's req/s in alternating runs (the spread is the machine's load, not the code).
 *
 * What we add around the library, each for a failure CHP had:
 * - an upstream response cut mid-way destroys the client response (the library left it open forever);
 * - a keep-alive upstream agent with bounded sockets and an idle timeout (CHP: unbounded global agent);
 * - websocket tunnels tracked in a Set: the upgrade request is destroyed if the client leaves before
 *   the upstream answers, the upstream socket is closed when the client goes (and vice versa, with a
 *   grace period for the half-close), and a client that sent nothing for `wsIdleTimeoutMs` is dropped
 *   (half-open connections to vanished laptops otherwise live for the kernel's retransmission timeout);
 * - activity as a plain number: web responses < 300 write `route.lastActivity` on 'finish';
 *   websocket activity is sampled from `socket.bytesRead` by a periodic sweep (and right before the
 *   API reads routes), so there is no per-chunk work at all.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { createProxyServer, type ServerOptions } from 'http-proxy-3'
import type { ProxyConfig } from './config.js'
import { KNOWN_UPSTREAM_ERRORS } from './errors.js'
import type { Logger } from './log.js'
import { logPath } from './log.js'
import type { Route, RouteTable } from './route-table.js'

/** Methods whose request may be sent again when a reused upstream socket turns out closed (RFC 9110 §9.2.2). */
const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Half-closed websocket sockets are destroyed after this long if the peer does not finish the close. */
export const WS_CLOSE_GRACE_MS = 2000
/** Upstream websocket handshakes that take longer than this (or --proxy-timeout) fail with 503. */
export const WS_UPGRADE_TIMEOUT_MS = 30_000

export interface ForwarderDeps {
  readonly table: RouteTable
  readonly log: Logger
  readonly now: () => number
  /** Answer a web request with an error status (error target / error path / plain). */
  readonly respondError: (code: number, req: IncomingMessage, res: ServerResponse) => void
  readonly onWebDone?: (status: number, startedAt: bigint) => void
}

export interface ForwarderStats {
  readonly openWebsockets: number
  readonly upstreamSockets: number
}

export interface Forwarder {
  web(req: IncomingMessage, res: ServerResponse, route: Route): void
  ws(req: IncomingMessage, socket: Socket, head: Buffer, route: Route): void
  /** Credit websocket client traffic to routes and drop idle tunnels; cheap, O(open websockets). */
  sweep(): void
  stats(): ForwarderStats
  close(): void
}

interface Tunnel {
  readonly client: Socket
  readonly routePath: string
  /** Stops watching the client during the handshake and gives back what it sent early. */
  releaseEarly: (() => void) | undefined
  upgradeReq: http.ClientRequest | undefined
  upgradeTimer: NodeJS.Timeout | undefined
  upstream: Socket | undefined
  lastRead: number
  lastReadAt: number
}

const ROUTE = Symbol('route')
type TaggedRes = ServerResponse & { [ROUTE]?: Route }
const CLIENT_RES = Symbol('client response')
type TaggedUpstreamRes = IncomingMessage & { [CLIENT_RES]?: ServerResponse }

function onUpstreamResClose(this: TaggedUpstreamRes): void {
  const res = this[CLIENT_RES]
  this[CLIENT_RES] = undefined
  if (res !== undefined && !this.complete && !res.writableEnded) res.destroy()
}

export function createForwarder(config: ProxyConfig, deps: ForwarderDeps): Forwarder {
  const { log, now } = deps
  const agentOptions = {
    keepAlive: true,
    maxSockets: config.maxUpstreamSockets,
    maxFreeSockets: config.maxFreeUpstreamSockets,
    timeout: config.upstreamFreeSocketTimeoutMs,
    scheduling: 'lifo' as const,
  }
  const httpAgent = new http.Agent(agentOptions)
  const clientTls = config.clientSsl === undefined ? {} : {
    key: config.clientSsl.key === undefined ? undefined : readFileSync(config.clientSsl.key),
    cert: config.clientSsl.cert === undefined ? undefined : readFileSync(config.clientSsl.cert),
    ca: config.clientSsl.ca === undefined ? undefined : readFileSync(config.clientSsl.ca),
  }
  const httpsAgent = new https.Agent({ ...agentOptions, ...clientTls, rejectUnauthorized: !config.insecure })
  // The hub's own route (`data.hub === true`, as JupyterHub and fleethub add '/') gets its own pool
  // without a socket cap: every user's hub traffic goes to that one host, and requests that are held
  // on purpose (a stop waiting for its pod, progress streams, spawns waiting for ready) must not
  // queue logins, logouts and API calls behind them. Load test class-start 1000: 300 stops held
  // 3-5 s filled the shared 256-socket pool, and GET /hub/logout waited p99 1.1 s behind them.
  // Its idle sockets are kept for a minute, not 4 s: the hub is one long-lived host, and after a
  // quiet stretch (students working in their servers) a burst of hub traffic (a class leaving) would
  // otherwise open a new connection per request while the hub is at its busiest.
  const hubAgentOptions = { ...agentOptions, maxSockets: Infinity, timeout: config.hubFreeSocketTimeoutMs }
  const hubHttpAgent = new http.Agent(hubAgentOptions)
  const hubHttpsAgent = new https.Agent({ ...hubAgentOptions, ...clientTls, rejectUnauthorized: !config.insecure })
  const agentFor = (route: Route, secure: boolean): http.Agent =>
    route.data.hub === true ? (secure ? hubHttpsAgent : hubHttpAgent) : (secure ? httpsAgent : httpAgent)
  // Websocket upgrades: one shared agent without keep-alive or a socket limit (an upgraded socket
  // leaves the agent). `agent: false` would build a whole new Agent per upgrade (~3 KB per websocket
  // in the benchmark); the keep-alive pool would count long-lived upgrades against its limit.
  const wsHttpAgent = new http.Agent({ keepAlive: false })
  const wsHttpsAgent = new https.Agent({ keepAlive: false, ...clientTls, rejectUnauthorized: !config.insecure })
  const baseOptions: ServerOptions = {
    xfwd: config.xForward,
    prependPath: config.prependPath,
    autoRewrite: config.autoRewrite,
    changeOrigin: config.changeOrigin,
    protocolRewrite: config.protocolRewrite,
    headers: Object.keys(config.customHeaders).length > 0 ? { ...config.customHeaders } : undefined,
    proxyTimeout: config.proxyTimeoutMs,
    timeout: config.timeoutMs,
    secure: !config.insecure,
    ws: true,
  }
  const proxy = createProxyServer(baseOptions)
  // Without an 'error' listener the library rethrows (a dead upstream would crash the process).
  proxy.on('error', (err, req) => { logUpstreamError(log, err, req, 'unhandled proxy error') })
  proxy.on('econnreset', () => { /* client already gone; the library destroyed the upstream request */ })
  proxy.on('proxyReqWs', (proxyReq, req) => { attachUpgrade(proxyReq, req) })
  // An upstream that dies mid-response: the library's pipe() does not pass the abort on, so the client
  // would wait forever on a response that will never end (found by leaks.test.ts). Cut it instead.
  proxy.on('proxyRes', (proxyRes, _req, res) => {
    ;(proxyRes as TaggedUpstreamRes)[CLIENT_RES] = res
    proxyRes.once('close', onUpstreamResClose)
  })

  const tunnels = new Set<Tunnel>()
  const pendingTunnels = new WeakMap<IncomingMessage, Tunnel>()
  const targets = new WeakMap<Route, { web: ServerOptions, ws: ServerOptions }>()

  function optionsFor(route: Route): { web: ServerOptions, ws: ServerOptions } {
    let options = targets.get(route)
    if (options === undefined) {
      const target = new URL(route.target)
      const secure = target.protocol === 'https:'
      options = { web: { target, agent: agentFor(route, secure) }, ws: { target, agent: secure ? wsHttpsAgent : wsHttpAgent } }
      targets.set(route, options)
    }
    return options
  }

  // The lean path serves plain forwarding (what JupyterHub configures); the options only the library
  // implements (redirect/cookie rewriting, target paths) keep going through it.
  const libraryOnlyOptions = config.autoRewrite || config.changeOrigin || config.protocolRewrite !== undefined
  const leanTargets = new WeakMap<Route, LeanTarget | null>()
  function leanTargetFor(route: Route): LeanTarget | undefined {
    let lean = leanTargets.get(route)
    if (lean === undefined) {
      const url = new URL(route.target)
      lean = libraryOnlyOptions || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' ? null : {
        secure: url.protocol === 'https:', hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
        agent: agentFor(route, url.protocol === 'https:'),
      }
      leanTargets.set(route, lean)
    }
    return lean ?? undefined
  }

  function forwardLean(req: IncomingMessage, res: ServerResponse, target: LeanTarget, retried = false): void {
    const headers = upstreamHeaders(req, config)
    const bodiless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined
    const proxyReq = (target.secure ? https : http).request({
      hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: target.agent,
    })
    if (config.timeoutMs !== undefined) req.socket.setTimeout(config.timeoutMs)
    if (config.proxyTimeoutMs !== undefined) proxyReq.setTimeout(config.proxyTimeoutMs, () => proxyReq.destroy())
    const onError = (err: NodeJS.ErrnoException): void => {
      if (res.destroyed || (req.socket.destroyed && err.code === 'ECONNRESET')) return
      // A kept-alive socket the upstream closed just as we reused it (a hub worker draining in a
      // rolling restart, an idle timeout): the request never reached it, so send it once more on a
      // fresh connection, as browsers do. Only bodiless requests of idempotent methods.
      if (!retried && proxyReq.reusedSocket && bodiless && !res.headersSent && RETRYABLE_METHODS.has(req.method ?? '') &&
          (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        log.debug({ method: req.method, path: logPath(req.url), code: err.code }, 'kept-alive upstream socket closed; retrying once')
        return forwardLean(req, res, target, true)
      }
      logUpstreamError(log, err, req, 'upstream failed')
      if (res.headersSent) res.destroy()
      else deps.respondError(503, req, res)
    }
    proxyReq.on('error', onError)
    // The client went away before the answer was complete: drop the upstream request too.
    res.once('close', () => { if (!res.writableFinished) proxyReq.destroy() })
    proxyReq.on('response', (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, responseHeaders(up, req))
      ;(up as TaggedUpstreamRes)[CLIENT_RES] = res
      up.once('close', onUpstreamResClose)
      up.pipe(res)
    })
    if (bodiless) {
      req.resume()
      proxyReq.end()
    } else {
      req.on('error', () => proxyReq.destroy())
      req.pipe(proxyReq)
    }
  }

  function onWebFinish(this: TaggedRes): void {
    const route = this[ROUTE]
    if (route !== undefined && this.statusCode < 300) route.lastActivity = now()
  }

  function attachUpgrade(proxyReq: http.ClientRequest, req: IncomingMessage): void {
    // A WeakMap, not a property on req: a new key on a long-lived IncomingMessage changes its shape
    // (and costs memory for the whole life of the websocket).
    const tunnel = pendingTunnels.get(req)
    if (tunnel === undefined) return
    pendingTunnels.delete(req)
    tunnel.upgradeReq = proxyReq
    // Our own timer rather than proxyReq.setTimeout: nothing of the handshake stays referenced afterwards.
    tunnel.upgradeTimer = setTimeout(onUpgradeTimeout, config.proxyTimeoutMs ?? WS_UPGRADE_TIMEOUT_MS, proxyReq)
    tunnel.upgradeTimer.unref()
    // Registered before the library's own 'upgrade' listener, so the client socket is paused with its
    // early bytes put back before the library pipes it.
    proxyReq.once('upgrade', (_res: IncomingMessage, upstream: Socket) => { onUpgraded(tunnel, upstream) })
  }

  function onUpgraded(tunnel: Tunnel, upstream: Socket): void {
    clearTimeout(tunnel.upgradeTimer)
    tunnel.upgradeTimer = undefined
    tunnel.releaseEarly?.()
    tunnel.lastReadAt = now()
    tunnel.upgradeReq = undefined
    tunnel.upstream = upstream
    if (tunnel.client.destroyed) upstream.destroy()
    upstream.once('close', () => { closeGracefully(tunnel.client) })
  }

  return {
    web(req, res, route) {
      ;(res as TaggedRes)[ROUTE] = route
      res.once('finish', onWebFinish)
      log.debug({ method: req.method, path: logPath(req.url), target: route.target }, 'proxy web')
      const lean = leanTargetFor(route)
      if (lean !== undefined) return forwardLean(req, res, lean)
      proxy.web(req, res, optionsFor(route).web, (err, _req, _res) => {
        logUpstreamError(log, err as NodeJS.ErrnoException, req, 'upstream failed')
        if (res.headersSent) res.destroy()
        else deps.respondError(503, req, res)
      })
    },

    ws(req, socket, head, route) {
      const tunnel: Tunnel = {
        client: socket, routePath: route.path, releaseEarly: undefined, upgradeReq: undefined, upgradeTimer: undefined, upstream: undefined,
        lastRead: socket.bytesRead, lastReadAt: now(),
      }
      watchHandshake(tunnel)
      tunnels.add(tunnel)
      pendingTunnels.set(req, tunnel)
      socket.once('close', () => {
        tunnels.delete(tunnel)
        clearTimeout(tunnel.upgradeTimer)
        tunnel.upgradeReq?.destroy()
        if (tunnel.upstream !== undefined) closeGracefully(tunnel.upstream)
      })
      log.debug({ path: logPath(req.url), target: route.target }, 'proxy websocket')
      proxy.ws(req, socket, head, optionsFor(route).ws, err => {
        logUpstreamError(log, err as NodeJS.ErrnoException, req, 'upstream websocket failed')
        // Before the upgrade the client still speaks HTTP: tell it why (CHP writes a bare status line).
        if (tunnel.upstream === undefined && socket.writable) {
          socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
        }
      })
    },

    sweep() {
      const t = now()
      for (const tunnel of tunnels) {
        const read = tunnel.client.bytesRead
        if (read !== tunnel.lastRead) {
          tunnel.lastRead = read
          tunnel.lastReadAt = t
          const route = deps.table.get(tunnel.routePath)
          if (route !== undefined && route.lastActivity < t) route.lastActivity = t
        } else if (tunnel.upstream !== undefined && config.wsIdleTimeoutMs > 0 && t - tunnel.lastReadAt >= config.wsIdleTimeoutMs) {
          // (A handshake still pending is bounded by the upgrade timeout, not by the idle rule.)
          log.info({ path: tunnel.routePath, idleMs: t - tunnel.lastReadAt }, 'closing idle websocket')
          tunnel.client.destroy()
          tunnel.upstream?.destroy()
        }
      }
    },

    stats() {
      let upstreamSockets = 0
      for (const agent of [httpAgent, httpsAgent, hubHttpAgent, hubHttpsAgent]) {
        for (const list of Object.values(agent.sockets)) upstreamSockets += list?.length ?? 0
        for (const list of Object.values(agent.freeSockets)) upstreamSockets += list?.length ?? 0
      }
      for (const tunnel of tunnels) if (tunnel.upstream !== undefined || tunnel.upgradeReq !== undefined) upstreamSockets++
      return { openWebsockets: tunnels.size, upstreamSockets }
    },

    close() {
      for (const tunnel of tunnels) {
        tunnel.upgradeReq?.destroy()
        tunnel.upstream?.destroy()
        tunnel.client.destroy()
      }
      tunnels.clear()
      for (const agent of [httpAgent, httpsAgent, hubHttpAgent, hubHttpsAgent, wsHttpAgent, wsHttpsAgent]) agent.destroy()
      proxy.removeAllListeners('proxyReqWs')
    },
  }
}

interface LeanTarget {
  readonly secure: boolean
  readonly hostname: string
  readonly port: number
  readonly agent: http.Agent
}

/** Connection-scoped (hop-by-hop) headers: never forwarded, in either direction (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])

/**
 * The request headers for the upstream: the client's, minus hop-by-hop ones (so the keep-alive pool
 * is not told to close), plus x-forwarded-* appended as CHP/http-proxy do, plus --custom-header.
 * Transfer-Encoding is dropped: Node re-frames the body (chunked when there is no Content-Length).
 */
function upstreamHeaders(req: IncomingMessage, config: ProxyConfig): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {}
  const src = req.headers
  for (const name in src) if (!HOP_BY_HOP.has(name)) headers[name] = src[name]
  if (config.xForward) {
    const port = /:(\d+)$/.exec(src.host ?? '')?.[1] ?? '80'
    appendHeader(headers, 'x-forwarded-for', req.socket.remoteAddress ?? '')
    appendHeader(headers, 'x-forwarded-port', port)
    appendHeader(headers, 'x-forwarded-proto', 'encrypted' in req.socket ? 'https' : 'http')
    if (headers['x-forwarded-host'] === undefined) headers['x-forwarded-host'] = src.host ?? ''
  }
  for (const name in config.customHeaders) headers[name] = config.customHeaders[name]
  return headers
}

function appendHeader(headers: http.OutgoingHttpHeaders, name: string, value: string): void {
  const prior = headers[name]
  headers[name] = prior === undefined || prior === '' ? value : `${String(prior)},${value}`
}

/**
 * The response headers for the client, as a flat [name, value, ...] list (duplicates such as
 * Set-Cookie kept, case kept): hop-by-hop ones removed except Transfer-Encoding for HTTP/1.1 clients,
 * which tells Node to chunk what it writes.
 */
function responseHeaders(up: IncomingMessage, req: IncomingMessage): string[] {
  const raw = up.rawHeaders
  const out: string[] = []
  const http11 = req.httpVersion === '1.1'
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(lower) && !(http11 && lower === 'transfer-encoding')) continue
    out.push(raw[i], raw[i + 1])
  }
  return out
}

function onUpgradeTimeout(proxyReq: http.ClientRequest): void {
  proxyReq.destroy(Object.assign(new Error('websocket upgrade timed out'), { code: 'ETIMEDOUT' }))
}

/** A client may send at most this much before the upstream accepted the upgrade. */
const EARLY_DATA_LIMIT = 64 * 1024

/**
 * During the upstream handshake the library leaves the client socket paused, and http sockets allow
 * half-open: a client that gives up (FIN) is never noticed and the pending upgrade lives forever
 * (found by leaks.test.ts). So read the client meanwhile, keep what it sends, and drop it on FIN.
 */
function watchHandshake(tunnel: Tunnel): void {
  const socket = tunnel.client
  const early: Buffer[] = []
  let size = 0
  const onData = (chunk: Buffer): void => {
    size += chunk.length
    if (size > EARLY_DATA_LIMIT) socket.destroy()
    else early.push(chunk)
  }
  const onEnd = (): void => { socket.destroy() }
  socket.on('data', onData)
  socket.once('end', onEnd)
  tunnel.releaseEarly = () => {
    tunnel.releaseEarly = undefined
    socket.pause()
    if (early.length > 0) socket.unshift(Buffer.concat(early))
    // Removed on the next tick, once the library's pipe() has added its own 'data'/'end' listeners:
    // removing the only listener of an event deletes a key from socket._events, which turns that
    // object into a dictionary for the rest of the websocket's life (~300 B each, seen in a heap diff).
    // pipe() starts the flow on a later tick, so no chunk reaches onData meanwhile.
    process.nextTick(() => {
      socket.removeListener('data', onData)
      socket.removeListener('end', onEnd)
    })
  }
}

/** End a socket; destroy it if the peer has not closed its side within the grace period. */
function closeGracefully(socket: Socket): void {
  if (socket.destroyed) return
  socket.end()
  const timer = setTimeout(() => socket.destroy(), WS_CLOSE_GRACE_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}

/** Known network errors (the upstream went away) are logged without a stack, as CHP does. */
function logUpstreamError(log: Logger, err: NodeJS.ErrnoException, req: IncomingMessage, msg: string): void {
  const fields = { method: req.method, path: logPath(req.url), code: err.code }
  if (err.code !== undefined && KNOWN_UPSTREAM_ERRORS.has(err.code)) log.warn({ ...fields, reason: err.message }, msg)
  else log.error({ ...fields, err }, msg)
}
