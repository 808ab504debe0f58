/**
 * The spawn and stop flows (contract §8.1 and §8.4): claim the server row, mint its credentials,
 * wait for a slot in the admission queue, start it through the spawner, check it answers HTTP,
 * route it, mark it running. Every failure ends with the row back at `stopped`, the reason kept,
 * credentials dropped and nothing left running.
 */
import { DEFAULT_URL_ENV, expandDefaultUrl, type Spawner, type SpawnerState, type SpawnSpec } from '../../../spawner/src/index.js'
import type { Db } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import type { RequestAuth } from '../auth/request-auth.js'
import { hashToken, newToken, tokenPrefix } from '../auth/token-secrets.js'
import { HttpError, userNotFound } from '../errors.js'
import { findUserByName } from '../users/user.repository.js'
import { serverPrefix, type ServerRoutes } from '../proxy/route-sync.js'
import { AdmissionQueue, QueueFullError, type QueuePass } from './admission-queue.js'
import { SpawnProgress, type ProgressEvent } from './progress.js'
import { claimForSpawn, claimForStop, findServer, listActiveServers, markRunning, markStopped, saveSpawnerState, type ServerRecord } from './server.repository.js'
import { sweepDeadOwners, GRACE_MS } from './owner-sweep.js'
import type { ProgressRelay } from './progress-relay.js'
import { urlEscape } from './url-escape.js'
import { waitForHttp } from './wait-for-http.js'
import { sql } from 'kysely'
import type { HubMetrics } from '../metrics.js'
import { mapLimit } from '../map-limit.js'

export interface SpawnConfig {
  /** The hub API as user servers reach it, e.g. `http://127.0.0.1:8081/hub/api` (JUPYTERHUB_API_URL). */
  readonly hubApiUrl: string
  /** At most this many spawns in flight (JupyterHub concurrent_spawn_limit). Default 100. */
  readonly concurrentSpawnLimit: number
  /** Spawn requests allowed to wait for a slot before the API answers 429. Default 2000. */
  readonly spawnQueueLimit: number
  /** At most this many active servers in all; 0 = no limit (JupyterHub active_server_limit). */
  readonly activeServerLimit: number
  /** Spawner start deadline (JupyterHub Spawner.start_timeout). Default 60 s. */
  readonly startTimeoutMs: number
  /** Deadline for the started server to answer HTTP (JupyterHub Spawner.http_timeout). Default 30 s. */
  readonly httpTimeoutMs: number
  /** Extra environment for every server (JupyterHub Spawner.environment); applied last. */
  readonly environment: Readonly<Record<string, string>>
  /** Where `/user/<name>/` lands (JupyterHub Spawner.default_url, checked, `{username}` expanded per spawn); undefined = the server's own. */
  readonly defaultUrl?: string
  /** Stop every server when the hub shuts down (JupyterHub cleanup_servers). Default true. */
  readonly cleanupServers: boolean
}

export interface SpawnOutcome {
  readonly server: ServerRecord
  /** `started` = this call began a spawn; `pending`/`running`/`stopping` = it was already so. */
  readonly status: 'started' | 'pending' | 'running' | 'stopping'
}

const SERVER_TOKEN_SCOPES = (user: string) => [
  `read:users:name!user=${user}`, `users:activity!user=${user}`, `read:users:activity!user=${user}`,
  `read:users:groups!user=${user}`, `access:servers!user=${user}`,
]

export function oauthClientId(user: string, serverName: string): string {
  return serverName === '' ? `jupyterhub-user-${urlEscape(user)}` : `jupyterhub-user-${urlEscape(user)}-${urlEscape(serverName)}`
}

export function accessScopes(user: string, serverName: string): string[] {
  return [`access:servers!server=${user}/${serverName}`, `access:servers!user=${user}`]
}

/** Python's json.dumps(list) formatting, which is what servers have always been given. */
const pyJsonList = (items: readonly string[]) => `[${items.map(i => JSON.stringify(i)).join(', ')}]`

export class SpawnManager {
  readonly #db: Db
  readonly #spawner: Spawner
  readonly #routes: ServerRoutes
  readonly #log: Logger
  readonly #auth: RequestAuth | undefined
  readonly #config: SpawnConfig
  readonly #replicaId: string
  readonly #metrics: HubMetrics | undefined
  readonly #admission: Admission
  /** In-flight and recently finished spawns, by server id. */
  readonly #progress = new Map<string, SpawnProgress>()
  readonly #inflight = new Set<Promise<unknown>>()
  /** Progress of spawns other hubs run (fleet), when there is a fleet. */
  readonly #relay: ProgressRelay | undefined
  #sweeper: NodeJS.Timeout | undefined
  /** Whether this hub holds its owner lock now (fleet.ts): spawns it claims are then safe from the sweep. */
  readonly #ownerLive: (() => boolean | Promise<boolean>) | undefined
  #sweeping = false
  #closing = false

  constructor(o: { db: Db; spawner: Spawner; routes: ServerRoutes; log: Logger; auth?: RequestAuth; config: SpawnConfig; replicaId: string; metrics?: HubMetrics; relay?: ProgressRelay; admission?: Admission; ownerLive?: () => boolean | Promise<boolean> }) {
    this.#relay = o.relay
    this.#ownerLive = o.ownerLive
    this.#metrics = o.metrics
    this.#db = o.db
    this.#spawner = o.spawner
    this.#routes = o.routes
    this.#log = o.log
    this.#auth = o.auth
    this.#config = o.config
    this.#replicaId = o.replicaId
    this.#admission = o.admission ?? new AdmissionQueue({ concurrency: o.config.concurrentSpawnLimit, maxQueued: o.config.spawnQueueLimit })
  }

  get spawner(): Spawner { return this.#spawner }
  /** Spawns of this hub starting / waiting for a slot. */
  get runningSpawns(): number { return this.#admission.running }
  get queuedSpawns(): number { return this.#admission.queued }

  /** The progress of a spawn this hub runs, or else the mirror of one another hub runs (progress-relay.ts). */
  progressFor(serverId: string): SpawnProgress | undefined {
    return this.#progress.get(serverId) ?? this.#relay?.mirror(serverId)
  }

  /** Whether this hub runs the spawn (its record is the truth, not a mirror of notifications). */
  runsSpawn(serverId: string): boolean {
    return this.#progress.has(serverId)
  }

  /**
   * Ask for a server; returns at once (the spawn continues in the background). `user.id` may be
   * left out: the claim finds the user by name in the same statement, and an unknown name is a 404.
   */
  async spawn(user: { id?: string; name: string }, serverName: string, userOptions: Record<string, unknown> = {}): Promise<SpawnOutcome> {
    if (this.#closing) throw new HttpError('HUB_SHUTTING_DOWN')
    // A hub that cannot prove itself alive to the fleet would own spawns the others fail as orphans.
    // A proof merely late (the machine busy) is renewed before refusing (leases.ts confirm).
    if (this.#ownerLive && !await this.#ownerLive()) throw new HttpError('HUB_NOT_READY')
    let userId = user.id
    const idOf = async (): Promise<string> => {
      userId ??= (await findUserByName(this.#db, user.name))?.id
      if (userId === undefined) throw userNotFound(user.name)
      return userId
    }
    // No look-up first: the atomic claim below tells "already pending/running" apart (one round
    // trip less per spawn); the rare paths (limits, queue full, lost claim) look the server up.
    const current = async (): Promise<SpawnOutcome | undefined> => {
      const existing = await findServer(this.#db, await idOf(), serverName)
      return existing && existing.state !== 'stopped' ? { server: existing, status: existing.state } : undefined
    }
    if (this.#config.activeServerLimit > 0) {
      const already = await current()
      if (already) return already
      const { n } = await this.#db.selectFrom('servers').select(sql<string>`count(*)`.as('n')).where('state', '<>', 'stopped').executeTakeFirstOrThrow()
      if (Number(n) >= this.#config.activeServerLimit) {
        this.#metrics?.spawnRejected.inc({ reason: 'active-server-limit' })
        throw new HttpError('HUB_ACTIVE_SERVER_LIMIT', `Active server limit (${this.#config.activeServerLimit}) reached; try again later`)
      }
    }
    // The server's API token and its OAuth client (whose secret is that token) are written with the claim.
    const apiToken = newToken()
    const prefix = serverPrefix(user.name, serverName)
    const clientId = oauthClientId(user.name, serverName)
    const credentials = {
      tokenPrefix: tokenPrefix(apiToken), tokenHash: hashToken(apiToken), scopes: SERVER_TOKEN_SCOPES(user.name),
      clientId, redirectUri: `${prefix}oauth_callback`, note: `Server at ${prefix}`,
    }
    // Claim first, then queue: the fleet's queue holds a ticket per claimed server (fleet-admission.ts).
    const server = await claimForSpawn(this.#db, { userId, userName: user.name, name: serverName, owner: this.#replicaId, spawnerKind: this.#spawner.kind, userOptions, credentials })
    if (!server) {
      const now = await current()
      if (now) return now
      throw new HttpError('HUB_SPAWN_CONFLICT')
    }
    let pass: QueuePass
    try {
      pass = await this.#admission.enter(server.id)
    } catch (err) {
      // refused (or the queue unreachable): nothing half-written stays behind
      await markStopped(this.#db, server.id, null, { owner: this.#replicaId, states: ['pending'] }).catch(e => this.#log.error({ err: e }, 'could not undo a refused claim'))
      if (!(err instanceof QueueFullError)) throw err
      this.#metrics?.spawnRejected.inc({ reason: 'queue-full' })
      throw new HttpError('HUB_SPAWN_QUEUE_FULL', 'Too many servers are starting right now; try again shortly', { headers: { 'retry-after': String(retryAfterSeconds()) } })
    }
    const progress = new SpawnProgress()
    this.#progress.set(server.id, progress)
    const relay = this.#relay
    if (relay) progress.subscribe(e => relay.publish(server.id, e))
    progress.emit({ progress: 0, message: 'Server requested' })
    const run = this.#run(server, this.#spec(server, prefix, apiToken, clientId, userOptions), progress, pass)
    this.#inflight.add(run)
    void run.finally(() => this.#inflight.delete(run))
    return { server, status: 'started' }
  }

  #spec(server: ServerRecord, prefix: string, apiToken: string, clientId: string, userOptions: Record<string, unknown>): SpawnSpec {
    const scopes = pyJsonList(accessScopes(server.userName, server.name))
    const env: Record<string, string> = {
      JUPYTERHUB_API_TOKEN: apiToken,
      JPY_API_TOKEN: apiToken,
      JUPYTERHUB_CLIENT_ID: clientId,
      JUPYTERHUB_HOST: '',
      JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`,
      JUPYTERHUB_OAUTH_SCOPES: scopes,
      JUPYTERHUB_OAUTH_ACCESS_SCOPES: scopes,
      JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: '[]',
      JUPYTERHUB_USER: server.userName,
      JUPYTERHUB_SERVER_NAME: server.name,
      JUPYTERHUB_API_URL: this.#config.hubApiUrl,
      JUPYTERHUB_ACTIVITY_URL: `${this.#config.hubApiUrl}/users/${urlEscape(server.userName)}/activity`,
      JUPYTERHUB_BASE_URL: '/',
      JUPYTERHUB_SERVICE_PREFIX: prefix,
      ...(this.#config.defaultUrl !== undefined ? { [DEFAULT_URL_ENV]: expandDefaultUrl(this.#config.defaultUrl, server.userName) } : {}),
      ...this.#config.environment,
    }
    return { user: server.userName, serverName: server.name, prefix, env, userOptions: userOptions as SpawnSpec['userOptions'] }
  }

  async #run(server: ServerRecord, spec: SpawnSpec, progress: SpawnProgress, pass: QueuePass): Promise<void> {
    const log = this.#log.child({ user: server.userName, server: server.name })
    let saved: SpawnerState | undefined
    let started: { url: string; state: SpawnerState } | undefined
    let deadline: AbortSignal | undefined
    const timer = this.#metrics?.spawnDuration.startTimer()
    try {
      if (pass.position() > 0) {
        progress.queuePosition = () => pass.position()
        progress.emit({ progress: 0, message: `Waiting for a free slot: number ${pass.position()} in line` })
        const abort = () => pass.release()
        progress.controller.signal.addEventListener('abort', abort, { once: true })
        await pass.ready
        progress.controller.signal.removeEventListener('abort', abort)
      }
      progress.controller.signal.throwIfAborted()
      progress.phase = 'starting'
      progress.queuePosition = undefined
      deadline = AbortSignal.timeout(this.#config.startTimeoutMs)
      const signal = AbortSignal.any([progress.controller.signal, deadline])
      started = await this.#spawner.start(spec, {
        signal,
        progress: e => progress.emit(e),
        saveState: s => { saved = s; void saveSpawnerState(this.#db, server.id, s).catch(() => undefined) },
      })
      progress.emit({ progress: 90, message: 'Server started; waiting for it to answer' })
      await waitForHttp(`${started.url}${spec.prefix}`, { timeoutMs: this.#config.httpTimeoutMs, signal: progress.controller.signal })
      await this.#routes.addServer(server, started.url)
      if (!await markRunning(this.#db, server.id, started.url, started.state, this.#replicaId)) throw new Error('the server was stopped while starting')
      const url = serverPrefix(server.userName, server.name)
      log.info({ url: started!.url }, 'server ready')
      timer?.({ status: 'success' })
      progress.finish({ progress: 100, ready: true, message: `Server ready at ${url}`, html_message: `Server ready at <a href="${url}">${url}</a>`, url })
    } catch (err) {
      const message = this.#failureMessage(err, progress, deadline)
      log.warn({ reason: message }, 'spawn failed')
      timer?.({ status: 'failure' })
      await this.#cleanupFailed(server, started?.state ?? saved).catch(e => log.error({ err: e }, 'cleanup after failed spawn failed'))
      await markStopped(this.#db, server.id, message, { owner: this.#replicaId, states: ['pending'] }).catch(e => log.error({ err: e }, 'could not mark failed server stopped'))
      progress.finish({ progress: 100, failed: true, message: `Spawn failed: ${message}` })
    } finally {
      pass.release()
      // Keep the finished record a little, for progress streams that connect late.
      setTimeout(() => { if (this.#progress.get(server.id) === progress) this.#progress.delete(server.id) }, 60_000).unref()
    }
  }

  #failureMessage(err: unknown, progress: SpawnProgress, deadline: AbortSignal | undefined): string {
    if (deadline?.aborted && !progress.controller.signal.aborted) return `the server did not start within ${Math.round(this.#config.startTimeoutMs / 1000)} seconds`
    if (progress.controller.signal.aborted) {
      const reason = progress.controller.signal.reason
      return reason instanceof Error ? reason.message : 'cancelled'
    }
    if (err instanceof QueueFullError) return 'too many servers are starting; try again shortly'
    if (err instanceof Error && err.name === 'TimeoutError') return `the server did not start within ${Math.round(this.#config.startTimeoutMs / 1000)} seconds`
    return err instanceof Error ? err.message : String(err)
  }

  async #cleanupFailed(server: ServerRecord, state: SpawnerState | undefined): Promise<void> {
    await this.#routes.removeServer(server).catch(() => undefined)
    if (state && Object.keys(state).length > 0) await this.#spawner.stop(state, { user: server.userName, serverName: server.name })
  }

  /**
   * Stop a server. A pending spawn is cancelled; a running server loses its route first (so no
   * request reaches a dying server), then its process, then its credentials.
   */
  async stop(server: ServerRecord, reason = 'stopped'): Promise<'stopped' | 'cancelled' | 'not-running' | 'stopping'> {
    if (server.state === 'pending') {
      const p = this.#progress.get(server.id)
      if (!p || p.done) return 'stopping'
      p.controller.abort(new Error('cancelled'))
      await p.finished
      return 'cancelled'
    }
    if (server.state === 'stopping') return 'stopping'
    if (server.state !== 'running' || !await claimForStop(this.#db, server.id, this.#replicaId)) return 'not-running'
    const log = this.#log.child({ user: server.userName, server: server.name })
    const timer = this.#metrics?.stopDuration.startTimer()
    try {
      await this.#routes.removeServer(server).catch(err => log.warn({ err: String(err) }, 'route removal failed; the route check will retry'))
      await this.#spawner.stop(server.spawnerState as SpawnerState, { user: server.userName, serverName: server.name })
    } finally {
      await markStopped(this.#db, server.id, null, { owner: this.#replicaId, states: ['stopping'] })
      this.#auth?.invalidate({ serverId: server.id, oauthClientId: oauthClientId(server.userName, server.name) })
    }
    timer?.({ status: 'success' })
    log.info({ reason }, 'server stopped')
    return 'stopped'
  }

  /**
   * After a hub (re)start: adopt servers that are still running, mark the rest stopped. Costs
   * O(active servers), with bounded concurrency; never reads all users.
   */
  async restore(): Promise<{ adopted: number; stopped: number }> {
    const servers = await listActiveServers(this.#db)
    let adopted = 0, stopped = 0
    await mapLimit(servers, 20, async s => {
      const who = { user: s.userName, serverName: s.name }
      if (s.state === 'running') {
        // A poll that fails (cluster unreachable) is "unknown", never "stopped": keep the server
        // and let the periodic poll decide later, rather than orphaning it.
        const polled = await this.#spawner.poll(s.spawnerState as SpawnerState, who).catch(err => {
          this.#log.warn({ user: s.userName, server: s.name, err: String(err) }, 'could not poll a server at start; keeping it')
          return { running: true as const }
        })
        if (polled.running) { adopted++; return }
        await markStopped(this.#db, s.id, null)
        stopped++
      }
      // pending or stopping: another hub of the fleet may own it; only a dead owner's are finished, below
    })
    stopped += await this.sweepDeadOwners()
    this.#log.info({ adopted, stopped }, 'servers restored after start')
    return { adopted, stopped }
  }

  /**
   * Poll every running server (JupyterHub's Spawner.poll_interval): a server that died or was
   * deleted behind the hub's back is marked stopped and loses its route. O(running servers) per
   * pass with bounded concurrency; spawners make poll cheap (a /proc read, an informer cache).
   */
  async pollAll(): Promise<number> {
    const running = (await listActiveServers(this.#db)).filter(s => s.state === 'running')
    let lost = 0
    await mapLimit(running, 20, async s => {
      const polled = await this.#spawner.poll(s.spawnerState as SpawnerState, { user: s.userName, serverName: s.name }).catch(() => ({ running: true as const }))
      if (polled.running) return
      // only if it is still the same running server (not stopped and restarted meanwhile)
      if (!await claimForStop(this.#db, s.id, this.#replicaId)) return
      lost++
      await this.#routes.removeServer(s).catch(() => undefined)
      await markStopped(this.#db, s.id, polled.reason ?? (polled.exitCode != null ? `the server exited with code ${polled.exitCode}` : 'the server stopped'), { owner: this.#replicaId, states: ['stopping'] })
      this.#auth?.invalidate({ serverId: s.id })
      this.#log.warn({ user: s.userName, server: s.name, reason: polled.reason }, 'server found stopped')
    })
    return lost
  }

  /**
   * Finish or fail the spawns and stops in flight whose hub died (owner-sweep.ts); returns how
   * many it settled. Any hub may run it; the fleet runs it on the `poll` lease holder.
   */
  async sweepDeadOwners(graceMs = GRACE_MS): Promise<number> {
    return sweepDeadOwners({
      db: this.#db, spawner: this.#spawner, routes: this.#routes, log: this.#log, hubId: this.#replicaId,
      spawnFailed: (server, message) => this.#relay?.publish(server.id, { progress: 100, failed: true, message: `Spawn failed: ${message}` }),
      stopped: server => this.#auth?.invalidate({ serverId: server.id, oauthClientId: oauthClientId(server.userName, server.name) }),
    }, graceMs)
  }

  /** Sweep every `everyMs` while `mayRun` says this hub is the one to (stated takeover: owner-sweep.ts). */
  startSweeping(mayRun: () => boolean, everyMs = 1000): void {
    this.#sweeper = setInterval(() => {
      if (this.#sweeping || this.#closing || !mayRun()) return
      this.#sweeping = true
      this.sweepDeadOwners()
        .then(() => this.#admission.heal?.())
        .catch(err => this.#log.warn({ err: String(err) }, 'sweep of dead hubs\' work failed'))
        .finally(() => { this.#sweeping = false })
    }, everyMs)
    this.#sweeper.unref()
  }

  /**
   * Stop accepting spawns; cancel pending ones (or, with `finishSpawns`, let them finish: a worker
   * replaced in a rolling restart hands nobody a failed spawn); stop running servers when
   * cleanupServers is set (or `o.cleanupServers` says so: in a fleet, only the last hub to go does).
   */
  async close(o: { cleanupServers?: boolean; finishSpawns?: boolean } = {}): Promise<void> {
    this.#closing = true
    clearInterval(this.#sweeper)
    if (!o.finishSpawns) for (const p of this.#progress.values()) if (!p.done) p.controller.abort(new Error('the hub is shutting down'))
    await Promise.allSettled([...this.#inflight])
    this.#admission.close?.()
    if (o.cleanupServers ?? this.#config.cleanupServers) {
      const servers = await listActiveServers(this.#db)
      await mapLimit(servers.filter(s => s.state === 'running'), 20, s => this.stop(s, 'hub shutdown').catch(err => this.#log.warn({ err: String(err) }, 'stop at shutdown failed')))
    }
  }
}

/** Where spawns wait for a slot: the fleet's (fleet-admission.ts) or this process's (AdmissionQueue, which ignores the server id). */
export interface Admission {
  enter(serverId: string): Promise<QueuePass> | QueuePass
  readonly running: number
  readonly queued: number
  /** Free what dead hubs' spawns held (fleet only). */
  heal?(): Promise<unknown>
  close?(): void
}

/** JupyterHub answers a throttled spawn with a random Retry-After in 30-60 s; we spread it less widely. */
function retryAfterSeconds(): number {
  return 10 + Math.floor(Math.random() * 20)
}


export type { ProgressEvent }
