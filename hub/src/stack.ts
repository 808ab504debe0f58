/**
 * Assembles a running hub: database pool, the express app on its port, the proxy (child or
 * external), route reconciliation, spawn flows. `startHub` is what `fleethub start|hub` and the
 * end-to-end tests run; everything it starts, `close()` stops, in reverse order.
 */
import cluster from 'node:cluster'
import { setMaxListeners } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Spawner } from '../../spawner/src/index.js'
import { createProxyClient, type ProxyClient } from '../../proxy/src/client.js'
import type { HubConfig } from './config.js'
import type { HubContext } from './context.js'
import { createApp } from './app.js'
import { HttpError } from './errors.js'
import { jsonErrorBody } from './error-handler.js'
import { REQUEST_ID_HEADER, requestIdFrom } from './request-id.js'
import { createDb, migrateToLatest, type Db } from './db.js'
import type { Logger } from '../../core/src/log.js'
import { RequestAuth } from './auth/request-auth.js'
import type { Authenticator } from './auth/authenticator.js'
import { AUTHENTICATORS } from './auth/authenticators.js'
import { ActivityBuffer } from './servers/activity.js'
import { SpawnManager } from './servers/spawn-manager.js'
import { createProgressRelay } from './servers/progress-relay.js'
import { FleetAdmission } from './servers/fleet-admission.js'
import { RouteSync, type ServerRoutes } from './proxy/route-sync.js'
import { StoredRoutes } from './proxy/stored-routes.js'
import { childProxyOptions, ProxyProcess } from './proxy/proxy-process.js'
import { deleteExpiredSessions } from './auth/session.repository.js'
import { listActiveServers } from './servers/server.repository.js'
import { ensureUser } from './users/user.repository.js'
import { createCuller } from './culler/culler.js'
import { cullerRouter } from './culler/culler.routes.js'
import { syncServiceToken } from './tokens/token.repository.js'
import { createHubMetrics } from './metrics.js'
import { startFleet, type Fleet, type FleetOptions } from './fleet/fleet.js'
import { registerFleetMetrics } from './fleet/fleet-metrics.js'

export interface HubStack {
  /** The public URL (through the proxy), e.g. http://127.0.0.1:8000 */
  readonly publicUrl: string
  /** The hub's own URL, e.g. http://127.0.0.1:8081 */
  readonly hubUrl: string
  readonly proxyApiUrl: string
  readonly proxyAuthToken: string
  readonly proxy: ProxyProcess | undefined
  readonly proxyClient: ProxyClient
  readonly ctx: HubContext
  readonly db: Db
  /** This hub's part in the fleet: its id, notification bus and singleton leases. */
  readonly fleet: Fleet
  /**
   * Stop everything this hub started, in reverse order. `drainMs`: first stop accepting and let
   * requests in flight finish (at most this long) and spawns in flight complete; `cleanupServers`
   * overrides the config's (a worker of several leaves user servers to the fleet).
   */
  close(o?: CloseOptions): Promise<void>
}

export interface CloseOptions {
  readonly drainMs?: number
  readonly cleanupServers?: boolean
}

export interface StartHubOptions {
  readonly config: HubConfig
  readonly databaseUrl: string
  readonly log: Logger
  readonly spawner: Spawner
  readonly authenticator?: Authenticator
  /** Tuning for tests: activity flush period (default 1000 ms). */
  readonly activityFlushMs?: number
  readonly slowSpawnTimeoutMs?: number
  /** Tuning for tests: lease tick, bus heartbeat and reconnect timings (hub/src/fleet/fleet.ts). */
  readonly fleet?: FleetOptions
}

/** Draining: how long open progress streams may go on before they are ended for a reconnect. */
const DRAIN_STREAM_GRACE_MS = 5000
/** Draining: idle kept-alive connections are closed once no request has come in for this long. */
const DRAIN_QUIET_MS = 500

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port))
  })
}

export async function startHub(o: StartHubOptions): Promise<HubStack> {
  const { config, log } = o
  const cleanups: Array<() => Promise<unknown> | unknown> = []
  let closeOptions: CloseOptions = {}
  let drain: ((ms: number) => Promise<void>) | undefined
  const close = async (o: CloseOptions = {}) => {
    closeOptions = o
    if (o.drainMs !== undefined && drain) await drain(o.drainMs).catch(err => log.warn({ err: String(err) }, 'drain failed'))
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(err => log.warn({ err: String(err) }, 'shutdown step failed'))
  }
  try {
    const { db, pool } = createDb({ url: o.databaseUrl, poolSize: config.dbPoolSize })
    cleanups.push(() => db.destroy())
    if (config.migrate) {
      const applied = await migrateToLatest(db)
      if (applied.length > 0) log.info({ applied }, 'database migrated')
    }
    // Several hubs may share this database (issue #14): caches follow each other's invalidations
    // and the singleton loops below run on the hub holding their lease.
    const hubId = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
    const fleet = await startFleet({ ...o.fleet, url: o.databaseUrl, publisher: pool, log, hubId,
      sharedProxy: config.proxy === 'external' ? config.proxyApiUrl : undefined,
      singletons: config.cullIdle ? ['culler', 'poll', 'prune', 'routes'] : ['poll', 'prune', 'routes'] })
    cleanups.push(() => fleet.close())

    // Listen first (the app is attached below): servers and the proxy need the real port. Until
    // then every request gets a 503 with Retry-After, never a connection that hangs.
    const server = http.createServer()
    const starting = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const err = new HttpError('HUB_STARTING'), reqId = requestIdFrom(req)
      res.writeHead(err.statusCode, { ...err.headers, 'content-type': 'application/json', connection: 'close', [REQUEST_ID_HEADER]: reqId })
      res.end(JSON.stringify(jsonErrorBody(err.statusCode, err.message, err.code, reqId)))
    }
    server.on('request', starting)
    server.keepAliveTimeout = 65_000
    // Requests in flight, for the drain below (a Set add and delete per request).
    const inFlight = new Set<http.ServerResponse>()
    let draining = false
    let lastRequestAt = 0
    server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      lastRequestAt = performance.now()
      if (draining) res.setHeader('connection', 'close')
      inFlight.add(res)
      res.once('close', () => inFlight.delete(res))
    })
    const drainSignal = new AbortController()
    // every open progress stream listens for the drain (and stops listening when it ends): no limit
    setMaxListeners(0, drainSignal.signal)
    // A cluster worker (`--workers N`) is told its port and listens only once it is ready: the
    // primary hands connections to every worker that listens, and a new worker in a rolling
    // restart must not answer "starting" to traffic the old ones serve.
    const listenLate = cluster.isWorker && config.hubPort !== 0
    const hubPort = listenLate ? config.hubPort : await listen(server, config.hubPort, config.hubIp)
    cleanups.push(() => new Promise(r => { server.close(r); server.closeAllConnections() }))
    // Stop accepting (in a cluster worker: the primary stops handing us connections) and give
    // requests in flight up to `ms` to finish, so that no client sees a request fail:
    // - a kept-alive connection carries at most one more request, answered with `Connection: close`
    //   (Node keeps serving kept-alive connections after `server.close()` and would otherwise hold
    //   the drain to its end, then cut whatever is in flight); the client then connects anew and
    //   the primary hands that connection to a worker that stays;
    // - connections left idle are closed once nothing has come in for a moment (Node closes those
    //   idle at `close()` itself; the proxy retries an idempotent request that meets one);
    // - progress streams end cleanly after a short grace (most spawns finish within it), and their
    //   EventSource reconnects elsewhere (servers/progress-stream.ts).
    drain = ms => new Promise<void>(resolve => {
      draining = true
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close')
      const streams = setTimeout(() => drainSignal.abort(), Math.min(DRAIN_STREAM_GRACE_MS, ms / 2))
      const quiet = setInterval(() => {
        if (inFlight.size === 0 && performance.now() - lastRequestAt >= DRAIN_QUIET_MS) server.closeIdleConnections()
      }, 100)
      const done = () => { clearTimeout(timer); clearTimeout(streams); clearInterval(quiet); drainSignal.abort(); resolve() }
      const timer = setTimeout(done, ms)
      server.close(done)
    })
    const hubUrl = `http://${config.hubIp}:${hubPort}`
    const hubConnectUrl = (config.hubConnectUrl ?? hubUrl).replace(/\/+$/, '')

    let proxy: ProxyProcess | undefined
    let proxyApiUrl = config.proxyApiUrl
    let publicUrl = `http://${config.ip}:${config.port}`
    if (config.proxy === 'child') {
      const api = new URL(config.proxyApiUrl)
      proxy = new ProxyProcess(childProxyOptions(config, { hubUrl: hubConnectUrl, databaseUrl: o.databaseUrl, log: log.child({ component: 'proxy-process' }) }))
      const ends = await proxy.start()
      cleanups.push(() => proxy!.close())
      proxyApiUrl = `http://${api.hostname}:${ends.apiPort}`
      publicUrl = `http://${config.ip === '0.0.0.0' ? os.hostname() : config.ip}:${ends.port}`
    }
    const proxyClient = createProxyClient({ apiUrl: proxyApiUrl, authToken: config.proxyAuthToken })
    cleanups.push(() => proxyClient.close())

    const auth = new RequestAuth(db, { roles: config.roles, services: config.services, cacheUsable: fleet.cacheUsable })
    for (const svc of config.services) if (svc.token) await syncServiceToken(db, svc.name, svc.token, ['inherit'])
    let queueStats = () => ({ running: 0, queued: 0 })
    const metrics = createHubMetrics({ db, pool, queue: () => queueStats() })
    registerFleetMetrics(metrics.registry, fleet)
    cleanups.push(() => metrics.close())
    const activity = new ActivityBuffer(db, log, { flushIntervalMs: o.activityFlushMs })
    cleanups.push(() => activity.close())
    fleet.followCaches(auth, activity)
    // A service token changed in config replaced its row above: the other hubs drop the old one now.
    if (config.services.some(s => s.token)) auth.invalidateAll()
    // Route-store mode: the database holds the table and every proxy follows it (proxy/stored-routes.ts).
    const routes: ServerRoutes = config.proxyRoutes === 'db'
      ? new StoredRoutes({ db, log: log.child({ component: 'routes' }) })
      : new RouteSync({ api: proxyClient, db, log: log.child({ component: 'routes' }), hubTarget: hubConnectUrl, activity, metrics })
    const relay = createProgressRelay({ bus: fleet.bus, hubId, log })
    cleanups.push(() => relay.close())
    // concurrent_spawn_limit and the spawn queue hold for the whole fleet (servers/fleet-admission.ts).
    const admission = new FleetAdmission({ db, bus: fleet.bus, hubId, log, concurrency: config.concurrentSpawnLimit, maxQueued: config.spawnQueueLimit,
      onPosition: (serverId, position) => relay.publishPosition(serverId, position) })
    await admission.start()
    const spawns = new SpawnManager({ metrics, relay, admission, ownerLive: () => fleet.leases.confirm('owner'),
      db, spawner: o.spawner, routes, log: log.child({ component: 'spawn' }), auth, replicaId: hubId,
      config: {
        hubApiUrl: `${hubConnectUrl}/hub/api`, concurrentSpawnLimit: config.concurrentSpawnLimit, spawnQueueLimit: config.spawnQueueLimit,
        activeServerLimit: config.activeServerLimit, startTimeoutMs: config.startTimeout * 1000, httpTimeoutMs: config.httpTimeout * 1000,
        environment: config.environment, defaultUrl: config.defaultUrl, cleanupServers: config.cleanupServers,
      },
    })
    queueStats = () => ({ running: spawns.runningSpawns, queued: spawns.queuedSpawns })
    cleanups.push(() => o.spawner.close())
    const ctx: HubContext = {
      db, log, auth, spawns, activity, routes, proxyRoutes: proxyClient, metrics, draining: drainSignal.signal,
      authenticator: o.authenticator ?? AUTHENTICATORS[config.authenticator].create(config, { db, log, publicUrl }),
      settings: {
        sessionMaxAge: config.sessionMaxAge, adminUsers: new Set(config.adminUsers),
        spawnPageWaitMs: 1000, slowSpawnTimeoutMs: o.slowSpawnTimeoutMs ?? 10_000, slowStopTimeoutMs: config.slowStopTimeout * 1000,
        allowNamedServers: config.allowNamedServers, namedServerLimitPerUser: config.namedServerLimitPerUser,
        services: config.services.map(s => ({ name: s.name, roles: s.roles })), spawnerKind: o.spawner.kind,
      },
    }
    // The idle culler: its admin routes always (admins may "cull now"), its schedule only with cullIdle.
    const culler = createCuller(ctx, {
      timeout: config.cullTimeout, every: config.cullEvery, maxAge: config.cullMaxAge, cullUsers: config.cullUsers,
      concurrency: config.cullConcurrency, cullAdminUsers: config.cullAdminUsers, removeNamedServers: config.cullRemoveNamedServers,
    })
    server.off('request', starting)
    server.on('request', createApp(ctx, [cullerRouter(ctx, culler)]))

    // Configured admins exist from the start (as in JupyterHub), so the first admin can sign in
    // with an authenticator that only knows existing accounts.
    for (const name of config.adminUsers) await ensureUser(db, name, { admin: true })
    await spawns.restore()
    if (o.spawner.findOrphans) {
      const known = (await listActiveServers(db)).map(sv => ({ user: sv.userName, serverName: sv.name }))
      const orphans = await o.spawner.findOrphans(known)
      if (orphans.length > 0) log.warn({ orphans: orphans.length, sample: orphans.slice(0, 5) }, 'servers running without a server record (set deleteOrphans to remove them)')
    }
    cleanups.push(() => spawns.close({ cleanupServers: closeOptions.cleanupServers, finishSpawns: closeOptions.drainMs !== undefined }))
    // Repaired, not replaced: a table that is whole (a hub joining a fleet, or restarted while the
    // proxy ran on) keeps the routes other hubs add meanwhile; one that lost most of its routes (a
    // proxy restarted with the hub) goes back in one call all the same (RouteSync.check).
    await routes.check()
    // A restarted proxy (ours, seen by its exit; or any, seen by its boot id) gets the whole table
    // back (with routes in the database it loads them itself, and this is one reconcile).
    const restore = () => { routes.restoreAll().catch(err => log.error({ err: String(err) }, 'route restore failed')) }
    proxy?.onRestart(restore)
    proxyClient.onRestart(restore)
    if (config.proxyRoutes === 'api') {
      // A proxy we did not start (or one restarted by its own supervisor) is noticed through its boot
      // id; a ping a second makes that within a second instead of at the next route change.
      const pinger = setInterval(() => { if (fleet.leases.mayRun('routes')) void proxyClient.ping().catch(() => undefined) }, 1000).unref()
      cleanups.push(() => clearInterval(pinger))
    }
    routes.start(config.lastActivityInterval * 1000, () => fleet.leases.mayRun('routes'))
    cleanups.push(() => routes.close())
    if (config.cullIdle) culler.start(() => fleet.leases.mayRun('culler'))
    cleanups.push(() => culler.close())
    const poller = setInterval(() => { if (fleet.leases.mayRun('poll')) void spawns.pollAll().catch(err => log.warn({ err: String(err) }, 'server poll failed')) }, config.pollInterval * 1000).unref()
    cleanups.push(() => clearInterval(poller))
    // Spawns and stops of a hub that died are finished or failed by the poll lease holder (servers/owner-sweep.ts).
    spawns.startSweeping(() => fleet.leases.holds('poll'))
    const sweeper = setInterval(() => { if (fleet.leases.mayRun('prune')) void deleteExpiredSessions(db).catch(() => undefined) }, 3600_000).unref()
    cleanups.push(() => clearInterval(sweeper))
    await fleet.startLeases()

    if (listenLate) await listen(server, hubPort, config.hubIp)
    return { publicUrl, hubUrl, proxyApiUrl, proxyAuthToken: config.proxyAuthToken, proxy, proxyClient, ctx, db, fleet, close }
  } catch (err) {
    await close()
    throw err
  }
}
