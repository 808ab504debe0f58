/**
 * Route-store mode (`--routes-from-db`): the routing table comes from Postgres, not from the REST
 * API. The proxy loads `proxy_routes` at start, then follows the `fleethub_routes` notifications
 * that the database sends as servers start and stop (migrations/0010). Each change carries a number
 * from one sequence, stored on the route too: a change is applied only when it is newer than the
 * route held (so one already loaded, or seen twice, does nothing), and the numbers seen are watched
 * for holes. A hole still open after `gapMs`, a sequence polled ahead of every number seen, or a
 * lost listening connection means a change was missed, and the whole table is reloaded (while the
 * connection is down the proxy keeps serving the table it has).
 *
 * Activity goes the other way: the data plane stamps `lastActivity` on each route in memory, and
 * every `flushMs` the routes stamped since the last flush are written in one statement
 * (`fleethub_record_route_activity`), so the culler sees traffic through any proxy. A route's
 * first activity after a load is written at the next flush, and so is activity after a quiet spell;
 * a route in steady use is written again only once its activity moved `resolutionMs` past what was
 * written. Every route every second was 4,000 row updates a second for 2,000 class users on two
 * proxies, and Postgres became the busiest process on the machine (bench-results round 8).
 *
 * The only file of the proxy that talks to Postgres.
 */
import pg from 'pg'
import type { Logger } from './log.js'
import type { RouteTable } from './route-table.js'

export const ROUTES_CHANNEL = 'fleethub_routes'

export interface RouteStoreOptions {
  readonly connectionString: string
  readonly table: RouteTable
  readonly log: Logger
  readonly now: () => number
  /** How often route activity is written (ms). Default 1000. */
  readonly flushMs?: number
  /**
   * A route in steady use is written again once its activity is this much newer than what was
   * written (ms). Default 60000: the database is then at most this far behind for an active user,
   * far inside any cull timeout (JupyterHub's own activity interval is 300 s).
   */
  readonly resolutionMs?: number
  /** How often the sequence is polled (ms); ahead of every number seen twice in a row reloads. Default 1000. */
  readonly pollMs?: number
  /** A hole in the numbers seen that stays open this long (ms) reloads. Default 2000. */
  readonly gapMs?: number
  /** Called before a flush, so websocket activity sampled lazily is current. */
  readonly refreshActivity?: () => void
}

export interface RouteStoreStats {
  readonly version: number
  readonly routes: number
  readonly reloads: number
  readonly notifications: number
  readonly activityFlushes: number
  readonly connected: boolean
}

interface SetChange { v: number; op: 'set'; path: string; server: string; user: string; data: Record<string, unknown> }
/** `reload`: the reconcile changed the table; `none`: it ran and changed nothing (its number still counts). */
type RouteChange = SetChange | { v: number; op: 'del'; path: string }
type Change = RouteChange | { v: number; op: 'reload' | 'none' }

/** `flushed`: the activity written last; `written`: whether anything was written since the route was loaded. */
interface Owned { readonly serverId: string; flushed: number; written: boolean; version: number }

const MAX_BACKOFF_MS = 5000

export class RouteStore {
  readonly #o: RouteStoreOptions
  readonly #pool: pg.Pool
  /** Routes this store put in the table (the `--default-target` route is not one of them). */
  readonly #owned = new Map<string, Owned>()
  #listener: pg.Client | undefined
  /** Every number up to here is accounted for: seen, or taken before the last load began. */
  #version = -1
  /** Numbers seen above `#version + 1`, waiting for the hole below them to close. */
  readonly #ahead = new Set<number>()
  #holeSince: number | undefined
  /** Deleted routes' numbers, for a late `set` of a route deleted since (cleared at each load). */
  readonly #deleted = new Map<string, number>()
  /** Notifications that arrived while a load was running: applied after it, in order. */
  #pending: Change[] | undefined
  #loading: Promise<void> | undefined
  #reloadAgain = false
  #polledAhead: number | undefined
  #closed = false
  #connected = false
  #backoffMs = 100
  #reloads = 0
  #notifications = 0
  #flushes = 0
  #flushing: Promise<void> = Promise.resolve()
  readonly #timers: NodeJS.Timeout[] = []

  constructor(options: RouteStoreOptions) {
    this.#o = options
    this.#pool = new pg.Pool({ connectionString: options.connectionString, max: 2, application_name: 'fleethub-proxy' })
    this.#pool.on('error', err => this.#o.log.warn({ err: String(err) }, 'route store pool connection failed'))
    // a checked-out client's connection dying emits on the client (hub/src/db.ts createDb)
    this.#pool.on('connect', client => { client.on('error', () => { /* its query rejects; the pool drops it */ }) })
  }

  get version(): number { return this.#version }

  stats(): RouteStoreStats {
    return {
      version: this.#version, routes: this.#owned.size, reloads: this.#reloads, notifications: this.#notifications,
      activityFlushes: this.#flushes, connected: this.#connected,
    }
  }

  /** Listen, then load the whole table. Resolves when every route is in the table. */
  async start(): Promise<void> {
    // the first proxy (or hub) in route-store mode turns the table's trigger on and fills it
    if ((await this.#pool.query<{ on: boolean }>('select fleethub_enable_route_store() as on')).rows[0]!.on) {
      this.#o.log.info('route store turned on: the routing table now follows the servers')
    }
    await this.#listen()
    await this.reload()
    const flush = setInterval(() => { void this.flushActivity() }, this.#o.flushMs ?? 1000)
    const poll = setInterval(() => { void this.#poll() }, this.#o.pollMs ?? 1000)
    flush.unref()
    poll.unref()
    this.#timers.push(flush, poll)
  }

  /** Read the whole table in one snapshot and make the in-memory table equal to it. */
  reload(): Promise<void> {
    if (this.#loading) {
      this.#reloadAgain = true
      return this.#loading
    }
    this.#pending = []
    this.#loading = this.#load().finally(() => {
      this.#loading = undefined
      const queued = this.#pending ?? []
      this.#pending = undefined
      for (const change of queued) this.#apply(change)
      if (this.#reloadAgain) {
        this.#reloadAgain = false
        void this.reload().catch(err => this.#o.log.error({ err: String(err) }, 'route reload failed'))
      }
    })
    return this.#loading
  }

  async #load(): Promise<void> {
    const started = Date.now()
    const client = await this.#pool.connect()
    let rows: Array<{ path: string; server_id: string; data: Record<string, unknown>; version: string }>
    let version: number
    try {
      // The sequence first (it is not transactional): every number up to it was taken by a change
      // that is in the snapshot below, or is committing now and will be notified after it.
      version = await readSequence(client)
      await client.query('begin isolation level repeatable read read only')
      rows = (await client.query<{ path: string; server_id: string; data: Record<string, unknown>; version: string }>(
        'select path, server_id::text as server_id, data, version::text as version from proxy_routes')).rows
      await client.query('commit')
    } catch (err) {
      await client.query('rollback').catch(() => undefined)
      throw err
    } finally {
      client.release()
    }
    const now = this.#o.now()
    const seen = new Set<string>()
    for (const row of rows) {
      seen.add(row.path)
      this.#set(row.path, row.server_id, row.data, Number(row.version), now)
    }
    for (const path of [...this.#owned.keys()]) {
      if (!seen.has(path)) this.#delete(path)
    }
    this.#deleted.clear()
    this.#version = version
    this.#ahead.clear()
    this.#holeSince = undefined
    this.#polledAhead = undefined
    this.#reloads++
    this.#o.log.info({ routes: rows.length, version, ms: Date.now() - started }, 'routes loaded from the database')
  }

  #set(path: string, serverId: string, data: Record<string, unknown>, version: number, now: number): void {
    const had = this.#o.table.get(path)
    const owned = this.#owned.get(path)
    // the same route again (a reload): keep its activity; a new or changed one starts now
    const same = had !== undefined && owned !== undefined && owned.serverId === serverId && had.target === data.target
    const route = this.#o.table.add(path, data, same ? had.lastActivity : now)
    this.#owned.set(path, { serverId, flushed: same ? owned.flushed : route.lastActivity, written: same ? owned.written : false, version })
  }

  #delete(path: string): void {
    this.#owned.delete(path)
    this.#o.table.remove(path)
  }

  /** Count `v` as seen; a hole below it starts its clock. */
  #count(v: number): void {
    if (v <= this.#version) return
    if (v === this.#version + 1) {
      this.#version = v
      while (this.#ahead.delete(this.#version + 1)) this.#version++
      if (this.#ahead.size === 0) this.#holeSince = undefined
      return
    }
    this.#ahead.add(v)
    this.#holeSince ??= Date.now()
  }

  #apply(change: Change): void {
    if (this.#pending) {
      this.#pending.push(change)
      return
    }
    this.#count(change.v)
    if (change.op === 'reload') {
      void this.reload().catch(err => this.#o.log.error({ err: String(err) }, 'route reload failed'))
      return
    }
    if (change.op === 'none') return
    this.#change(change as RouteChange)
  }

  #change(change: RouteChange): void {
    // Changes to one route come in order (its server's row lock orders them); a change that is not
    // newer than what this proxy holds was already in the snapshot it loaded.
    const held = this.#owned.get(change.path)?.version ?? this.#deleted.get(change.path) ?? 0
    if (change.v <= held) return
    if (change.op === 'set') {
      this.#deleted.delete(change.path)
      this.#set(change.path, change.server, change.data, change.v, this.#o.now())
    } else {
      this.#deleted.set(change.path, change.v)
      this.#delete(change.path)
    }
    // at debug only (benchmarks time propagation from it): pino skips it cheaply otherwise
    this.#o.log.debug({ op: change.op, path: change.path, v: change.v }, 'route change applied')
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#o.connectionString, application_name: 'fleethub-proxy-listen', keepAlive: true })
    client.on('notification', msg => {
      if (msg.channel !== ROUTES_CHANNEL || msg.payload === undefined) return
      this.#notifications++
      let change: Change
      try {
        change = JSON.parse(msg.payload) as Change
      } catch {
        this.#o.log.error({ payload: msg.payload.slice(0, 200) }, 'unreadable route notification; reloading')
        void this.reload().catch(() => undefined)
        return
      }
      this.#apply(change)
    })
    const lost = (err?: Error) => {
      if (this.#listener !== client) return
      this.#listener = undefined
      this.#connected = false
      client.removeAllListeners('notification')
      void client.end().catch(() => undefined)
      if (this.#closed) return
      this.#o.log.warn({ err: err && String(err), retryMs: this.#backoffMs }, 'route notifications lost; reconnecting')
      this.#reconnectLater()
    }
    client.on('error', lost)
    client.on('end', () => lost())
    await client.connect()
    await client.query(`listen ${ROUTES_CHANNEL}`)
    this.#listener = client
    this.#connected = true
    this.#backoffMs = 100
  }

  #reconnectLater(): void {
    const timer = setTimeout(() => {
      if (this.#closed) return
      // notifications sent while disconnected are gone: listen again, then read the whole table
      this.#listen().then(() => this.reload()).catch(err => {
        this.#o.log.warn({ err: String(err) }, 'route store reconnect failed')
        this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2)
        if (this.#listener) {
          // listening again but the reload failed: drop it, so the next attempt reloads too
          const c = this.#listener
          this.#listener = undefined
          this.#connected = false
          void c.end().catch(() => undefined)
        }
        this.#reconnectLater()
      })
    }, this.#backoffMs)
    timer.unref()
  }

  /** Test hook and operator aid: drop the listening connection as a network fault would. */
  dropListener(): void {
    const client = this.#listener
    if (client) (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
  }

  /**
   * A hole in the numbers seen that stayed open for `gapMs`, or a sequence ahead of every number
   * accounted for on two polls in a row (the first could be a notification still on its way, or
   * the last change before a quiet spell): a change was missed. A number taken by a transaction
   * that rolled back at its commit looks the same and costs one needless reload.
   */
  async #poll(): Promise<void> {
    if (this.#loading || !this.#connected) return
    if (this.#holeSince !== undefined && Date.now() - this.#holeSince >= (this.#o.gapMs ?? 2000)) {
      this.#o.log.warn({ accounted: this.#version, seen: [...this.#ahead].slice(0, 5) }, 'missed a route notification; reloading')
      await this.reload().catch(err => this.#o.log.error({ err: String(err) }, 'route reload failed'))
      return
    }
    let version: number
    try {
      const client = await this.#pool.connect()
      try { version = await readSequence(client) } finally { client.release() }
    } catch (err) {
      this.#o.log.warn({ err: String(err) }, 'route version poll failed')
      return
    }
    if (version <= this.#version) {
      this.#polledAhead = undefined
      return
    }
    if (this.#polledAhead !== undefined && this.#version < this.#polledAhead) {
      this.#o.log.warn({ accounted: this.#version, database: version }, 'route numbers behind the database; reloading')
      await this.reload().catch(err => this.#o.log.error({ err: String(err) }, 'route reload failed'))
      return
    }
    this.#polledAhead = version
  }

  /** Write the activity seen since the last flush, one statement for every route; concurrent calls queue. */
  flushActivity(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#writeActivity()).catch(err => {
      this.#o.log.warn({ err: String(err) }, 'route activity flush failed; it is retried with the next one')
    })
    return this.#flushing
  }

  async #writeActivity(): Promise<void> {
    this.#o.refreshActivity?.()
    const resolution = this.#o.resolutionMs ?? 60_000
    const ids: string[] = []
    const seen: string[] = []
    const written: Array<[Owned, number]> = []
    for (const [path, owned] of this.#owned) {
      const route = this.#o.table.get(path)
      if (route === undefined || route.lastActivity <= owned.flushed) continue
      if (owned.written && route.lastActivity - owned.flushed < resolution) continue
      ids.push(owned.serverId)
      seen.push(new Date(route.lastActivity).toISOString())
      written.push([owned, route.lastActivity])
    }
    if (ids.length === 0) return
    await this.#pool.query('select fleethub_record_route_activity($1::bigint[], $2::timestamptz[])', [ids, seen])
    for (const [owned, at] of written) {
      owned.flushed = Math.max(owned.flushed, at)
      owned.written = true
    }
    this.#flushes++
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const t of this.#timers) clearInterval(t)
    await this.flushActivity()
    const listener = this.#listener
    this.#listener = undefined
    await listener?.end().catch(() => undefined)
    await this.#pool.end().catch(() => undefined)
  }
}

/** The last number the route sequence handed out (0 before the first). */
async function readSequence(client: pg.PoolClient): Promise<number> {
  const { rows } = await client.query<{ last_value: string; is_called: boolean }>('select last_value::text, is_called from proxy_routes_version')
  return rows[0]!.is_called ? Number(rows[0]!.last_value) : 0
}
