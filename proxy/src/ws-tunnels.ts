/**
 * Websocket tunnels, tracked in a Set from the upgrade request until both sockets are closed. The
 * passes of one tunnel, in order: `openTunnel` (watch the client during the handshake), `attach`
 * (bound the upstream handshake in time), `connectUpstream` (hand over what the client sent early,
 * tie the two sockets' ends together), `refuseUpgrade` (the upstream failed before the upgrade),
 * `releaseTunnel` (the client left). Each closes a leak CHP had: the upgrade request is destroyed if
 * the client leaves before the upstream answers, the upstream socket is closed when the client goes
 * (and vice versa, with a grace period for the half-close), and a client that sent nothing for
 * `wsIdleTimeoutMs` is dropped (half-open connections to vanished laptops otherwise live for the
 * kernel's retransmission timeout). Activity is sampled from `socket.bytesRead` by `sweep` (run
 * periodically and right before the API reads routes), so there is no per-chunk work at all.
 */
import type { ClientRequest, IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { ProxyConfig } from './config.js'
import type { Logger } from './log.js'
import type { Route, RouteTable } from './route-table.js'

/** Half-closed websocket sockets are destroyed after this long if the peer does not finish the close. */
export const WS_CLOSE_GRACE_MS = 2000
/** Upstream websocket handshakes that take longer than this (or --proxy-timeout) fail with 503. */
export const WS_UPGRADE_TIMEOUT_MS = 30_000
/** A client may send at most this much before the upstream accepted the upgrade. */
const EARLY_DATA_LIMIT = 64 * 1024

export interface Tunnel {
  readonly client: Socket
  readonly routePath: string
  /** Stops watching the client during the handshake and gives back what it sent early. */
  releaseEarly: (() => void) | undefined
  upgradeReq: ClientRequest | undefined
  upgradeTimer: NodeJS.Timeout | undefined
  upstream: Socket | undefined
  lastRead: number
  lastReadAt: number
}

export interface Tunnels {
  /** An upgrade request arrived for `route`: track it. */
  open(req: IncomingMessage, client: Socket, route: Route): Tunnel
  /** The upgrade request went upstream (the library's 'proxyReqWs'). */
  attach(proxyReq: ClientRequest, req: IncomingMessage): void
  /** Credit client traffic to routes and drop idle tunnels; O(open websockets). */
  sweep(): void
  /** Open tunnels, and those of them holding an upstream socket or a pending upgrade. */
  count(): { open: number, upstream: number }
  close(): void
}

export function createTunnels(
  config: Pick<ProxyConfig, 'proxyTimeoutMs' | 'wsIdleTimeoutMs'>,
  deps: { readonly table: RouteTable, readonly log: Logger, readonly now: () => number },
): Tunnels {
  const { table, log, now } = deps
  const tunnels = new Set<Tunnel>()
  // A WeakMap, not a property on req: a new key on a long-lived IncomingMessage changes its shape
  // (and costs memory for the whole life of the websocket).
  const pending = new WeakMap<IncomingMessage, Tunnel>()
  const upgradeTimeoutMs = config.proxyTimeoutMs ?? WS_UPGRADE_TIMEOUT_MS
  return {
    open(req, client, route) {
      const tunnel = openTunnel(client, route, now())
      tunnels.add(tunnel)
      pending.set(req, tunnel)
      client.once('close', () => {
        tunnels.delete(tunnel)
        releaseTunnel(tunnel)
      })
      return tunnel
    },
    attach(proxyReq, req) {
      const tunnel = pending.get(req)
      if (tunnel === undefined) return
      pending.delete(req)
      tunnel.upgradeReq = proxyReq
      // Our own timer rather than proxyReq.setTimeout: nothing of the handshake stays referenced afterwards.
      tunnel.upgradeTimer = setTimeout(onUpgradeTimeout, upgradeTimeoutMs, proxyReq)
      tunnel.upgradeTimer.unref()
      // Registered before the library's own 'upgrade' listener, so the client socket is paused with its
      // early bytes put back before the library pipes it.
      proxyReq.once('upgrade', (_res: IncomingMessage, upstream: Socket) => { connectUpstream(tunnel, upstream, now()) })
    },
    sweep() {
      const t = now()
      for (const tunnel of tunnels) sampleTunnel(tunnel, t, table, config.wsIdleTimeoutMs, log)
    },
    count() {
      let upstream = 0
      for (const tunnel of tunnels) if (tunnel.upstream !== undefined || tunnel.upgradeReq !== undefined) upstream++
      return { open: tunnels.size, upstream }
    },
    close() {
      for (const tunnel of tunnels) {
        tunnel.upgradeReq?.destroy()
        tunnel.upstream?.destroy()
        tunnel.client.destroy()
      }
      tunnels.clear()
    },
  }
}

function openTunnel(client: Socket, route: Route, at: number): Tunnel {
  const tunnel: Tunnel = {
    client, routePath: route.path, releaseEarly: undefined, upgradeReq: undefined, upgradeTimer: undefined, upstream: undefined,
    lastRead: client.bytesRead, lastReadAt: at,
  }
  watchHandshake(tunnel)
  return tunnel
}

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

function onUpgradeTimeout(proxyReq: ClientRequest): void {
  proxyReq.destroy(Object.assign(new Error('websocket upgrade timed out'), { code: 'ETIMEDOUT' }))
}

function connectUpstream(tunnel: Tunnel, upstream: Socket, at: number): void {
  clearTimeout(tunnel.upgradeTimer)
  tunnel.upgradeTimer = undefined
  tunnel.releaseEarly?.()
  tunnel.lastReadAt = at
  tunnel.upgradeReq = undefined
  tunnel.upstream = upstream
  if (tunnel.client.destroyed) upstream.destroy()
  upstream.once('close', () => { closeGracefully(tunnel.client) })
}

/**
 * One tunnel's sweep: client bytes read since the last one are activity for its route (read again
 * from the table: the route may have been replaced); none for `idleMs` drops an upgraded tunnel.
 * (A handshake still pending is bounded by the upgrade timeout, not by the idle rule.)
 */
function sampleTunnel(tunnel: Tunnel, t: number, table: RouteTable, idleMs: number, log: Logger): void {
  const read = tunnel.client.bytesRead
  if (read !== tunnel.lastRead) {
    tunnel.lastRead = read
    tunnel.lastReadAt = t
    const route = table.get(tunnel.routePath)
    if (route !== undefined && route.lastActivity < t) route.lastActivity = t
  } else if (tunnel.upstream !== undefined && idleMs > 0 && t - tunnel.lastReadAt >= idleMs) {
    log.info({ path: tunnel.routePath, idleMs: t - tunnel.lastReadAt }, 'closing idle websocket')
    tunnel.client.destroy()
    tunnel.upstream?.destroy()
  }
}

/** The upstream failed: before the upgrade the client still speaks HTTP, so tell it why (CHP writes a bare status line). */
export function refuseUpgrade(tunnel: Tunnel): void {
  if (tunnel.upstream === undefined && tunnel.client.writable) {
    tunnel.client.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  }
}

function releaseTunnel(tunnel: Tunnel): void {
  clearTimeout(tunnel.upgradeTimer)
  tunnel.upgradeReq?.destroy()
  if (tunnel.upstream !== undefined) closeGracefully(tunnel.upstream)
}

/** End a socket; destroy it if the peer has not closed its side within the grace period. */
function closeGracefully(socket: Socket): void {
  if (socket.destroyed) return
  socket.end()
  const timer = setTimeout(() => socket.destroy(), WS_CLOSE_GRACE_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
