/**
 * The data plane: forwards HTTP requests and websocket upgrades to a route's target, by composing
 * named passes (as httpxy does): web-incoming.ts and web-outgoing.ts for the lean web path,
 * ws-tunnels.ts for websockets, upstream-agents.ts for the pools, upstream-error.ts for failures.
 * This is the ONLY file that imports the forwarding library, so it can be swapped here alone.
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
 * all JupyterHub configures, goes through our own lean path (web-incoming.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { createProxyServer, type ErrorCallback, type ServerOptions } from 'http-proxy-3'
import type { ProxyConfig } from './config.js'
import { type Logger, logPath } from './log.js'
import type { Route, RouteTable } from './route-table.js'
import { createUpstreamAgents, type UpstreamAgents } from './upstream-agents.js'
import { createWebFailure, logUpstreamError, type WebFailure } from './upstream-error.js'
import { createLeanTargets, forwardLean, type LeanContext } from './web-incoming.js'
import { createActivityRecorder, cutClientOnUpstreamAbort } from './web-outgoing.js'
import { createTunnels, refuseUpgrade, type Tunnels } from './ws-tunnels.js'

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

export function createForwarder(config: ProxyConfig, deps: ForwarderDeps): Forwarder {
  const { log } = deps
  const agents = createUpstreamAgents(config)
  const tunnels = createTunnels(config, deps)
  const fail = createWebFailure(log, deps.respondError)
  const library = createLibraryPath(config, { agents, tunnels, log, fail })
  const leanTargetFor = createLeanTargets(config, agents)
  const lean: LeanContext = { config, log, fail }
  const recordActivity = createActivityRecorder(deps.now)
  return {
    web(req, res, route) {
      recordActivity(res, route)
      log.debug({ method: req.method, path: logPath(req.url), target: route.target }, 'proxy web')
      const target = leanTargetFor(route)
      if (target !== undefined) forwardLean(lean, req, res, target)
      else library.web(req, res, route)
    },
    ws(req, socket, head, route) {
      const tunnel = tunnels.open(req, socket, route)
      log.debug({ path: logPath(req.url), target: route.target }, 'proxy websocket')
      library.ws(req, socket, head, route, err => {
        logUpstreamError(log, err as NodeJS.ErrnoException, req, 'upstream websocket failed')
        refuseUpgrade(tunnel)
      })
    },
    sweep: () => tunnels.sweep(),
    stats() {
      const { open, upstream } = tunnels.count()
      return { openWebsockets: open, upstreamSockets: agents.countSockets() + upstream }
    },
    close() {
      tunnels.close()
      agents.close()
      library.close()
    },
  }
}

interface LibraryPath {
  web(req: IncomingMessage, res: ServerResponse, route: Route): void
  ws(req: IncomingMessage, socket: Socket, head: Buffer, route: Route, onError: ErrorCallback): void
  close(): void
}

/** http-proxy-3, for websockets and for the web options the lean path leaves to it. */
function createLibraryPath(
  config: ProxyConfig,
  deps: { agents: UpstreamAgents, tunnels: Tunnels, log: Logger, fail: WebFailure },
): LibraryPath {
  const { agents, tunnels, log, fail } = deps
  const proxy = createProxyServer(libraryOptions(config))
  // Without an 'error' listener the library rethrows (a dead upstream would crash the process).
  proxy.on('error', (err, req) => { logUpstreamError(log, err, req, 'unhandled proxy error') })
  proxy.on('econnreset', () => { /* client already gone; the library destroyed the upstream request */ })
  proxy.on('proxyReqWs', (proxyReq, req) => { tunnels.attach(proxyReq, req) })
  proxy.on('proxyRes', (proxyRes, _req, res) => { cutClientOnUpstreamAbort(proxyRes, res as ServerResponse) })
  const targets = new WeakMap<Route, { web: ServerOptions, ws: ServerOptions }>()
  const optionsFor = (route: Route): { web: ServerOptions, ws: ServerOptions } => {
    let options = targets.get(route)
    if (options === undefined) {
      const target = new URL(route.target)
      const secure = target.protocol === 'https:'
      options = { web: { target, agent: agents.web(route, secure) }, ws: { target, agent: agents.ws(secure) } }
      targets.set(route, options)
    }
    return options
  }
  return {
    web(req, res, route) {
      proxy.web(req, res, optionsFor(route).web, err => { fail(err as NodeJS.ErrnoException, req, res) })
    },
    ws(req, socket, head, route, onError) { proxy.ws(req, socket, head, optionsFor(route).ws, onError) },
    close() { proxy.removeAllListeners('proxyReqWs') },
  }
}

function libraryOptions(config: ProxyConfig): ServerOptions {
  return {
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
}
