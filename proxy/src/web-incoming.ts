/**
 * The lean web path: plain forwarding over node:http and the keep-alive pools, for what JupyterHub
 * configures (a target that is a bare origin, no library-only option). Its request passes, in order:
 * the client timeout, the upstream headers (hop-by-hop dropped, x-forwarded-* appended,
 * --custom-header set), then the stream to the upstream, whose answer goes through the response
 * passes of web-outgoing.ts. The lean path passes the same leak tests and the JupyterHub test as the
 * library, and measured 1.1x to 3x http-proxy-3's req/s in alternating runs
 * (bench-results/proxy-2026-11-28/report.md, "Forwarding engine").
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { ProxyConfig } from './config.js'
import { HOP_BY_HOP } from './hop-by-hop.js'
import { type Logger, logPath } from './log.js'
import type { Route } from './route-table.js'
import type { UpstreamAgents } from './upstream-agents.js'
import type { WebFailure } from './upstream-error.js'
import { forwardResponse } from './web-outgoing.js'

/** Where a lean request goes: resolved once per route. */
export interface LeanTarget {
  readonly secure: boolean
  readonly hostname: string
  readonly port: number
  readonly agent: http.Agent
}

/** What the passes read besides the request; one per forwarder. */
export interface LeanContext {
  readonly config: ProxyConfig
  readonly log: Logger
  readonly fail: WebFailure
}

/** Methods whose request may be sent again when a reused upstream socket turns out closed (RFC 9110 §9.2.2). */
const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * A route's lean target, or undefined when it needs the library: a target with a path or query, or
 * an option only the library implements (--auto-rewrite, --change-origin, --protocol-rewrite).
 * Cached per route object, so a route replaced through the API is resolved again.
 */
export function createLeanTargets(config: ProxyConfig, agents: UpstreamAgents): (route: Route) => LeanTarget | undefined {
  const libraryOnlyOptions = config.autoRewrite || config.changeOrigin || config.protocolRewrite !== undefined
  const leanTargets = new WeakMap<Route, LeanTarget | null>()
  return route => {
    let lean = leanTargets.get(route)
    if (lean === undefined) {
      const url = new URL(route.target)
      const secure = url.protocol === 'https:'
      lean = libraryOnlyOptions || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' ? null : {
        secure, hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
        agent: agents.web(route, secure),
      }
      leanTargets.set(route, lean)
    }
    return lean ?? undefined
  }
}

/** The request passes, in order. `retried`: this is the one resend after a stale kept-alive socket. */
export function forwardLean(ctx: LeanContext, req: IncomingMessage, res: ServerResponse, target: LeanTarget, retried = false): void {
  setClientTimeout(req, ctx.config.timeoutMs)
  streamToUpstream(ctx, req, res, target, upstreamHeaders(req, ctx.config), retried)
}

/** --timeout: a client socket idle that long is closed by Node. */
function setClientTimeout(req: IncomingMessage, timeoutMs: number | undefined): void {
  if (timeoutMs !== undefined) req.socket.setTimeout(timeoutMs)
}

/**
 * The request headers for the upstream: the client's, minus hop-by-hop ones (so the keep-alive pool
 * is not told to close), plus x-forwarded-* appended as CHP/http-proxy do, plus --custom-header.
 * Transfer-Encoding is dropped: Node re-frames the body (chunked when there is no Content-Length).
 */
function upstreamHeaders(req: IncomingMessage, config: ProxyConfig): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {}
  const src = req.headers
  for (const name in src) if (!HOP_BY_HOP.has(name)) headers[name] = src[name]
  if (config.xForward) appendForwardedHeaders(headers, req)
  for (const name in config.customHeaders) headers[name] = config.customHeaders[name]
  return headers
}

function appendForwardedHeaders(headers: http.OutgoingHttpHeaders, req: IncomingMessage): void {
  const host = req.headers.host
  appendHeader(headers, 'x-forwarded-for', req.socket.remoteAddress ?? '')
  appendHeader(headers, 'x-forwarded-port', /:(\d+)$/.exec(host ?? '')?.[1] ?? '80')
  appendHeader(headers, 'x-forwarded-proto', 'encrypted' in req.socket ? 'https' : 'http')
  if (headers['x-forwarded-host'] === undefined) headers['x-forwarded-host'] = host ?? ''
}

function appendHeader(headers: http.OutgoingHttpHeaders, name: string, value: string): void {
  const prior = headers[name]
  headers[name] = prior === undefined || prior === '' ? value : `${String(prior)},${value}`
}

/** Sends the request upstream and its answer to the client; on failure retries once, or fails. */
function streamToUpstream(
  ctx: LeanContext, req: IncomingMessage, res: ServerResponse, target: LeanTarget,
  headers: http.OutgoingHttpHeaders, retried: boolean,
): void {
  const bodiless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined
  const proxyReq = (target.secure ? https : http).request({
    hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: target.agent,
  })
  const proxyTimeoutMs = ctx.config.proxyTimeoutMs
  if (proxyTimeoutMs !== undefined) proxyReq.setTimeout(proxyTimeoutMs, () => proxyReq.destroy())
  proxyReq.on('error', (err: NodeJS.ErrnoException) => {
    if (res.destroyed || (req.socket.destroyed && err.code === 'ECONNRESET')) return
    if (!retried && mayResend(err, proxyReq, req, res, bodiless)) {
      ctx.log.debug({ method: req.method, path: logPath(req.url), code: err.code }, 'kept-alive upstream socket closed; retrying once')
      return forwardLean(ctx, req, res, target, true)
    }
    ctx.fail(err, req, res)
  })
  // The client went away before the answer was complete: drop the upstream request too.
  res.once('close', () => { if (!res.writableFinished) proxyReq.destroy() })
  proxyReq.on('response', (up: IncomingMessage) => { forwardResponse(req, res, up) })
  if (bodiless) {
    req.resume()
    proxyReq.end()
  } else {
    req.on('error', () => proxyReq.destroy())
    req.pipe(proxyReq)
  }
}

/**
 * A kept-alive socket the upstream closed just as we reused it (a hub worker draining in a rolling
 * restart, an idle timeout): the request never reached it, so it may go once more on a fresh
 * connection, as browsers do. Only bodiless requests of idempotent methods, and only before the
 * client got any of the answer.
 */
function mayResend(
  err: NodeJS.ErrnoException, proxyReq: http.ClientRequest, req: IncomingMessage, res: ServerResponse, bodiless: boolean,
): boolean {
  return proxyReq.reusedSocket && bodiless && !res.headersSent && RETRYABLE_METHODS.has(req.method ?? '') &&
    (err.code === 'ECONNRESET' || err.code === 'EPIPE')
}
