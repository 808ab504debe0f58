/**
 * The connection pools towards upstreams: a keep-alive agent with bounded sockets and an idle timeout
 * for user servers (CHP used the unbounded global agent), an uncapped one for the hub's route, and a
 * plain one for websocket upgrades.
 */
import http from 'node:http'
import https from 'node:https'
import { readFileSync } from 'node:fs'
import type { ProxyConfig } from './config.js'
import type { Route } from './route-table.js'

export interface UpstreamAgents {
  /** The keep-alive pool for a route's web requests. */
  web(route: Route, secure: boolean): http.Agent
  /** The agent for websocket upgrades. */
  ws(secure: boolean): http.Agent
  /** Sockets open or idle in the web pools. */
  countSockets(): number
  close(): void
}

export function createUpstreamAgents(config: ProxyConfig): UpstreamAgents {
  const agentOptions = {
    keepAlive: true,
    maxSockets: config.maxUpstreamSockets,
    maxFreeSockets: config.maxFreeUpstreamSockets,
    timeout: config.upstreamFreeSocketTimeoutMs,
    scheduling: 'lifo' as const,
  }
  const tls = { ...clientTls(config), rejectUnauthorized: !config.insecure }
  const httpAgent = new http.Agent(agentOptions)
  const httpsAgent = new https.Agent({ ...agentOptions, ...tls })
  // The hub's own route (`data.hub === true`, as JupyterHub and fleethub add '/') gets its own pool
  // without a socket cap: every user's hub traffic goes to that one host, and requests that are held
  // on purpose (a stop waiting for its pod, progress streams, spawns waiting for ready) must not
  // queue logins, logouts and API calls behind them. Load test class-start 1000: 300 stops held
  // 3-5 s filled the shared 256-socket pool, and GET /hub/logout waited p99 1.1 s behind them.
  // Its idle sockets are kept for a minute, not 4 s: the hub is one long-lived host, and after a
  // quiet stretch (students working in their servers) a burst of hub traffic (a class leaving) would
  // otherwise open a new connection per request while the hub is at its busiest.
  // Its sockets are reused first-in-first-out: each is one hub process's connection (`--workers N`
  // hands connections out; a Service balances hub replicas by connection), and last-in-first-out
  // sent nearly every request between bursts down the socket used last, to one process (round 6
  // of bench-results: one of two workers did 87% of the work).
  const hubAgentOptions = { ...agentOptions, maxSockets: Infinity, timeout: config.hubFreeSocketTimeoutMs, scheduling: 'fifo' as const }
  const hubHttpAgent = new http.Agent(hubAgentOptions)
  const hubHttpsAgent = new https.Agent({ ...hubAgentOptions, ...tls })
  // Websocket upgrades: one shared agent without keep-alive or a socket limit (an upgraded socket
  // leaves the agent). `agent: false` would build a whole new Agent per upgrade (~3 KB per websocket
  // in the benchmark); the keep-alive pool would count long-lived upgrades against its limit.
  const wsHttpAgent = new http.Agent({ keepAlive: false })
  const wsHttpsAgent = new https.Agent({ keepAlive: false, ...tls })
  const webAgents = [httpAgent, httpsAgent, hubHttpAgent, hubHttpsAgent]

  return {
    web: (route, secure) =>
      route.data.hub === true ? (secure ? hubHttpsAgent : hubHttpAgent) : (secure ? httpsAgent : httpAgent),
    ws: secure => secure ? wsHttpsAgent : wsHttpAgent,
    countSockets() {
      let sockets = 0
      for (const agent of webAgents) {
        for (const list of Object.values(agent.sockets)) sockets += list?.length ?? 0
        for (const list of Object.values(agent.freeSockets)) sockets += list?.length ?? 0
      }
      return sockets
    },
    close() {
      for (const agent of [...webAgents, wsHttpAgent, wsHttpsAgent]) agent.destroy()
    },
  }
}

/** --client-ssl-*: the certificate the proxy presents to https upstreams. */
function clientTls(config: ProxyConfig): https.AgentOptions {
  const files = config.clientSsl
  if (files === undefined) return {}
  return {
    key: files.key === undefined ? undefined : readFileSync(files.key),
    cert: files.cert === undefined ? undefined : readFileSync(files.cert),
    ca: files.ca === undefined ? undefined : readFileSync(files.ca),
  }
}
