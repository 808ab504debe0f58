/**
 * sim-servers: one process hosting many virtual single-user servers (virtual-server.ts, the same
 * code kube-sim runs as pods), each on its own 127.x.y.z:8888 address, driven by a small loopback
 * control API. JupyterHub's spawner in loadtest/jupyterhub/jupyterhub_config.py asks it for
 * servers, so JupyterHub gets the same servers fleethub gets from kube-sim, with the same
 * configurable start time (shared/LOADTEST.md "Where simulated servers come from").
 *
 * Control API (JSON; errors `{"status": N, "message": "...", "code": "..."}`; every route but
 * /health needs `Authorization: token <SIM_SERVERS_TOKEN>` when a token is configured):
 *   GET    /health              200 {"status": "ok"}
 *   POST   /servers {"env": {...JUPYTERHUB_*}, "id"?: 16 hex}   waits the start time, binds, checks the hub;
 *                               201 {"id", "ip", "port", "url"} once it listens
 *   GET    /servers             200 {"servers": [{"id", "user", "state"}]}  (one list for every poll)
 *   GET    /servers/<id>        200 {"id", "user", "ip", "port", "state": "starting"|"running"} or 404
 *   DELETE /servers/<id>        204 once it no longer listens (a start in progress is cancelled), or 404
 *   GET    /stats               200 counters (started, stopped, failed, running, starting, ...)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import pino, { type Logger } from 'pino'
import { parseRange } from '../../kube-sim/src/config.js'
import { IpAllocator, startVirtualServer, type VirtualServer, type VirtualServerExtra } from '../../kube-sim/src/virtual-server.js'

export interface Range { readonly min: number; readonly max: number }

export interface SimServersOptions {
  /** Loopback only. Default 127.0.0.1. */
  readonly host?: string
  /** Default 0 (any free port). */
  readonly port?: number
  /** Start time of each server (after the request, before it binds), ms, uniform. Default 0-0. */
  readonly startTime?: Range
  /** At most this many servers starting or running; more are refused with 429. Default 20000. */
  readonly maxServers?: number
  /** Required on every control request but /health when set. */
  readonly token?: string
  /** The port every virtual server binds on its own address. Default 8888. */
  readonly serverPort?: number
  /** Second octet of the first address (127.<first>.0.1). Default 128 (kube-sim uses 64..126). */
  readonly ipFirst?: number
  readonly extra?: Omit<VirtualServerExtra, 'signal'>
  readonly log?: Logger
}

export interface SimServersStats {
  readonly running: number
  readonly starting: number
  /** Servers that came up (listened after their version check). */
  readonly started: number
  /** Servers stopped by DELETE (or cancelled while starting). */
  readonly stopped: number
  /** Starts that failed (bad env, hub unreachable, no address). */
  readonly failed: number
  /** Addresses skipped because something else listened there. */
  readonly addressesInUse: number
  /** Users that got a server, ever (distinct JUPYTERHUB_USER). */
  readonly users: number
}

export interface SimServers {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  stats(): SimServersStats
  close(): Promise<void>
}

interface Entry {
  readonly id: string
  readonly user: string
  readonly ip: string
  state: 'starting' | 'running'
  server?: VirtualServer
  readonly abort: AbortController
}

const BODY_LIMIT = 256 * 1024
const MAX_ADDRESS_TRIES = 20

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message) }
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) { res.writeHead(status).end(); return }
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text)
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'SIM_SERVERS_BAD_CONTENT_TYPE', 'expected application/json')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > BODY_LIMIT) throw new HttpError(413, 'SIM_SERVERS_BODY_TOO_LARGE', `body over ${BODY_LIMIT} bytes`)
    chunks.push(chunk)
  }
  try { return JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { throw new HttpError(400, 'SIM_SERVERS_BAD_JSON', 'body is not JSON') }
}

function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost'
}

const draw = (r: Range): number => r.min + Math.random() * Math.max(0, r.max - r.min)
const hash = (s: string) => createHash('sha256').update(s).digest()

export async function createSimServers(o: SimServersOptions = {}): Promise<SimServers> {
  const host = o.host ?? '127.0.0.1'
  if (!isLoopback(host)) throw new Error(`sim-servers binds loopback only, not ${host}`)
  const log = o.log ?? pino({ level: 'silent' })
  const startTime = o.startTime ?? { min: 0, max: 0 }
  const maxServers = o.maxServers ?? 20_000
  const serverPort = o.serverPort ?? 8888
  const tokenHash = o.token === undefined ? undefined : hash(o.token)
  // a random start inside the range: two sim-servers on one machine (parallel tests) rarely collide
  const ips = new IpAllocator(o.ipFirst ?? 128, 63, Math.floor(Math.random() * 40 * 256 * 254))
  const entries = new Map<string, Entry>()
  const users = new Set<string>()
  const counters = { started: 0, stopped: 0, failed: 0, addressesInUse: 0 }
  let closing = false

  const authorized = (req: IncomingMessage): boolean => {
    if (!tokenHash) return true
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    return m !== null && timingSafeEqual(hash(m[1]!), tokenHash)
  }

  const stats = (): SimServersStats => {
    let running = 0, starting = 0
    for (const e of entries.values()) e.state === 'running' ? running++ : starting++
    return { running, starting, ...counters, users: users.size }
  }

  async function startOne(env: Record<string, string>, id = randomBytes(8).toString('hex')): Promise<Entry> {
    if (entries.size >= maxServers) throw new HttpError(429, 'SIM_SERVERS_FULL', `${maxServers} servers already starting or running`)
    if (entries.has(id)) throw new HttpError(409, 'SIM_SERVERS_EXISTS', `server ${id} exists`)
    const user = env.JUPYTERHUB_USER ?? ''
    const entry: Entry = { id, user, ip: '', state: 'starting', abort: new AbortController() }
    entries.set(entry.id, entry)
    try {
      const delay = draw(startTime)
      if (delay > 0) await new Promise(r => setTimeout(r, delay))
      if (entry.abort.signal.aborted) throw new HttpError(409, 'SIM_SERVERS_CANCELLED', 'stopped while starting')
      for (let attempt = 0; ; attempt++) {
        const ip = ips.allocate()
        try {
          entry.server = await startVirtualServer(env, ip, serverPort, log.child({ server: entry.id, user }), { ...o.extra, signal: entry.abort.signal })
          ;(entry as { ip: string }).ip = ip
          break
        } catch (err) {
          // something else (another simulator) holds that address: take the next one
          if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < MAX_ADDRESS_TRIES) { counters.addressesInUse++; continue }
          throw err
        }
      }
      if (entry.abort.signal.aborted) {
        await entry.server.close()
        throw new HttpError(409, 'SIM_SERVERS_CANCELLED', 'stopped while starting')
      }
      entry.state = 'running'
      counters.started++
      users.add(user)
      return entry
    } catch (err) {
      entries.delete(entry.id)
      if (entry.abort.signal.aborted) { counters.stopped++; throw new HttpError(409, 'SIM_SERVERS_CANCELLED', 'stopped while starting') }
      counters.failed++
      if (err instanceof HttpError) throw err
      const code = (err as { code?: string }).code
      log.warn({ user, code, err: (err as Error).message }, 'virtual server did not start')
      throw new HttpError(code === 'SINGLEUSER_CONFIG_INVALID' ? 400 : 502, code ?? 'SIM_SERVERS_START_FAILED', (err as Error).message)
    }
  }

  async function stopOne(entry: Entry): Promise<void> {
    if (entry.state === 'starting') { entry.abort.abort(); return } // startOne counts and forgets it
    entries.delete(entry.id)
    await entry.server?.close()
    counters.stopped++
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim-servers')
    if (url.pathname === '/health' && req.method === 'GET') return send(res, 200, { status: 'ok' })
    if (!authorized(req)) throw new HttpError(403, 'SIM_SERVERS_FORBIDDEN', 'a valid token is required')
    if (closing) throw new HttpError(503, 'SIM_SERVERS_CLOSING', 'shutting down')
    if (url.pathname === '/stats' && req.method === 'GET') return send(res, 200, stats())
    if (url.pathname === '/servers') {
      if (req.method === 'GET') return send(res, 200, { servers: [...entries.values()].map(e => ({ id: e.id, user: e.user, state: e.state })) })
      if (req.method !== 'POST') throw new HttpError(405, 'SIM_SERVERS_METHOD', `${req.method} /servers`)
      const body = await readJson(req) as { env?: unknown; id?: unknown } | null
      const env = body?.env
      const id = body?.id
      if (id !== undefined && (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id))) throw new HttpError(400, 'SIM_SERVERS_BAD_ID', '"id" must be 16 lowercase hex digits')
      if (typeof env !== 'object' || env === null || Array.isArray(env) || !Object.values(env).every(v => typeof v === 'string')) {
        throw new HttpError(400, 'SIM_SERVERS_BAD_ENV', '"env" must be an object of strings')
      }
      const e = await startOne(env as Record<string, string>, id as string | undefined)
      return send(res, 201, { id: e.id, ip: e.ip, port: serverPort, url: e.server!.url })
    }
    const m = /^\/servers\/([0-9a-f]{16})$/.exec(url.pathname)
    if (m) {
      const e = entries.get(m[1]!)
      if (!e) throw new HttpError(404, 'SIM_SERVERS_NOT_FOUND', 'no such server')
      if (req.method === 'GET') return send(res, 200, { id: e.id, user: e.user, ip: e.ip || null, port: serverPort, state: e.state })
      if (req.method === 'DELETE') { await stopOne(e); return send(res, 204) }
      throw new HttpError(405, 'SIM_SERVERS_METHOD', `${req.method} /servers/<id>`)
    }
    throw new HttpError(404, 'SIM_SERVERS_NOT_FOUND', 'not found')
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'SIM_SERVERS_INTERNAL', (err as Error).message)
      if (e.status >= 500 && !(err instanceof HttpError)) log.error({ err: (err as Error).message }, 'control request failed')
      if (res.headersSent) { res.destroy(); return }
      req.resume()
      send(res, e.status, { status: e.status, message: e.message, code: e.code })
    })
  })
  http.keepAliveTimeout = 30_000
  // a start waits its start time plus the hub version check (up to ~46 s of retries)
  http.requestTimeout = 0
  http.headersTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(o.port ?? 0, host, () => { http.off('error', reject); resolve() })
  })
  const addr = http.address() as AddressInfo
  const url = `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`
  log.info({ url, startTime, maxServers }, 'sim-servers listening')
  return {
    url,
    stats,
    async close() {
      closing = true
      const all = [...entries.values()]
      for (const e of all) e.abort.abort()
      // bounded: each close ends its sockets at once
      await Promise.all(all.filter(e => e.state === 'running').map(e => e.server?.close().catch(() => undefined)))
      entries.clear()
      await new Promise<void>(resolve => { http.close(() => resolve()); http.closeAllConnections() })
    },
  }
}

export const SIM_SERVERS_USAGE = `usage: fleethub loadtest sim-servers [options]

Many virtual single-user servers in one process, each on its own 127.x.y.z:8888 address, for
JupyterHub's spawner in loadtest/jupyterhub/jupyterhub_config.py. Loopback only. The control API
token is SIM_SERVERS_TOKEN (required).

  --host ADDR          control API address (loopback; default 127.0.0.1)
  --port N             control API port (default 0: any; the URL is printed)
  --start-time D[-D]   each server's start time, uniform range, e.g. 5s-15s (default 0)
  --max-servers N      refuse more than N at once with 429 (default 20000)
  --log-level LEVEL    pino level (default warn)
`

/** `fleethub loadtest sim-servers`: run until SIGINT/SIGTERM. */
export async function simServersMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, strict: true, options: {
      help: { type: 'boolean', short: 'h' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' },
      'start-time': { type: 'string', default: '0' }, 'max-servers': { type: 'string', default: '20000' }, 'log-level': { type: 'string', default: 'warn' },
    } }).values
  } catch (err) {
    process.stderr.write(`fleethub loadtest sim-servers: ${(err as Error).message}\n\n${SIM_SERVERS_USAGE}`)
    return 2
  }
  if (values.help) { process.stdout.write(SIM_SERVERS_USAGE); return 0 }
  const problems: string[] = []
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`--port: 0..65535, got ${String(values.port)}`)
  const maxServers = Number(values['max-servers'])
  if (!Number.isInteger(maxServers) || maxServers < 1 || maxServers > 1_000_000) problems.push(`--max-servers: 1..1000000, got ${String(values['max-servers'])}`)
  let startTime: Range = { min: 0, max: 0 }
  try { startTime = parseRange(String(values['start-time']), '--start-time') } catch (err) { problems.push((err as Error).message) }
  if (!isLoopback(String(values.host))) problems.push(`--host: loopback only, got ${String(values.host)}`)
  const token = env.SIM_SERVERS_TOKEN
  if (!token) problems.push('SIM_SERVERS_TOKEN is not set')
  if (problems.length > 0) {
    process.stderr.write(`fleethub loadtest sim-servers: ${problems.join('; ')}\n\n${SIM_SERVERS_USAGE}`)
    return 2
  }
  const log = pino({ level: String(values['log-level']), base: { component: 'sim-servers' } })
  const sim = await createSimServers({ host: String(values.host), port, startTime, maxServers, token, log })
  process.stdout.write(`sim-servers listening on ${sim.url}\n`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await sim.close()
  return 0
}
