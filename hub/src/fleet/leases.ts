/**
 * Singleton leases (issue #14): session-level advisory locks on one dedicated connection per hub.
 * Exactly one session can hold a lock; when the holder's process dies or closes, its connection
 * closes and Postgres frees its locks at once, and another hub takes them at its next tick.
 *
 * Every `tickMs` a hub tries `pg_try_advisory_lock` on the leases it does not hold; that same
 * query proves its session alive. Two bounds follow:
 * - takeover: at most one tick after the holder's connection closes (crash, SIGKILL, close);
 *   when a holder vanishes without closing its socket (machine loss, partition), Postgres ends
 *   its session after `idleTimeoutMs` of silence (idle_session_timeout, set on this connection
 *   only), so at most `idleTimeoutMs + tickMs` (default 3 s + 1 s);
 * - no overlap: a hub believes it holds a lease only while its last proof is younger than
 *   `idleTimeoutMs - tickMs`, i.e. before Postgres could have ended its session and handed the
 *   lock to another hub. A broken connection drops every lease at once, and the hub then waits
 *   two ticks before trying again, so that a healthy hub takes over first.
 * A loop gated by a lease checks `mayRun` at each of its ticks; a pass already running when its
 * hub loses the connection finishes (each step of it is guarded by row claims in the database).
 */
import pg from 'pg'
import type { Logger } from '../../../core/src/log.js'

export interface LeaseSpec {
  /** Metric label and log name: culler, routes, poll, prune. */
  readonly name: string
  /** The advisory lock's two int4 keys. */
  readonly key: readonly [number, number]
}

export interface LeaseState {
  readonly name: string
  readonly held: boolean
  /** Times this hub acquired it. */
  readonly acquired: number
  /** Loop passes this hub started under it (`mayRun` answered true). */
  readonly runs: number
}

export interface LeasesOptions {
  readonly url: string
  readonly log: Logger
  /** Postgres application_name of the lock connection. */
  readonly applicationName: string
  readonly specs: readonly LeaseSpec[]
  /** How often to try free leases and prove the held ones, ms. Default 1000. */
  readonly tickMs?: number
  /** idle_session_timeout of the lock connection, ms. Default 3 × tickMs. */
  readonly idleTimeoutMs?: number
}

export interface Leases {
  /** Whether this hub holds the lease now. */
  holds(name: string): boolean
  /** `holds`, counting a loop pass started under the lease (metrics; the loop runs only when true). */
  mayRun(name: string): boolean
  /**
   * `holds`, but a lease held with a proof gone stale (a busy event loop or database delayed the
   * last tick) is proved again first: one tick now, waited for at most the trust window. False only
   * when it is not held, or not provable in that time.
   */
  confirm(name: string): Promise<boolean>
  states(): LeaseState[]
  /** Take what is free now, then keep ticking. */
  start(): Promise<void>
  /** Stop ticking and close the connection (the locks go with it). */
  close(): Promise<void>
}

const TRY_SQL = 'select pg_try_advisory_lock(k.a, k.b) as got from unnest($1::int4[], $2::int4[]) with ordinality as k(a, b, i) order by k.i'

export function createLeases(o: LeasesOptions): Leases {
  const tickMs = o.tickMs ?? 1000
  const idleTimeoutMs = Math.max(o.idleTimeoutMs ?? 3 * tickMs, 2 * tickMs)
  const trustMs = idleTimeoutMs - tickMs
  const log = o.log.child({ component: 'leases' })
  const held = new Set<string>()
  const counts = new Map(o.specs.map(s => [s.name, { acquired: 0, runs: 0 }]))
  let client: pg.Client | undefined
  let provedAt = 0
  let retryAt = 0
  let ticking: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const lose = (c: pg.Client, err: unknown) => {
    if (c !== client) return
    client = undefined
    provedAt = 0
    retryAt = Date.now() + 2 * tickMs
    if (held.size > 0) log.warn({ leases: [...held], err: String(err) }, 'lock connection lost; leases dropped')
    held.clear()
    c.end().catch(() => undefined)
  }

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: o.url, application_name: o.applicationName.slice(0, 63), keepAlive: true, connectionTimeoutMillis: Math.max(2000, 2 * tickMs) })
    c.on('error', err => lose(c, err))
    c.on('end', () => lose(c, new Error('connection ended')))
    try {
      await c.connect()
      // A holder that goes silent (machine gone, no FIN) must not keep its locks for the kernel's
      // TCP keepalive (hours): Postgres ends sessions idle this long. Postgres 14+.
      await c.query(`select set_config('idle_session_timeout', $1, false)`, [String(idleTimeoutMs)])
        .catch(err => log.warn({ err: String(err) }, 'idle_session_timeout not supported; a silent holder keeps its leases until TCP notices'))
    } catch (err) {
      c.end().catch(() => undefined)
      throw err
    }
    return c
  }

  const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> => {
    let t: NodeJS.Timeout | undefined
    return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error('lease query timed out')), ms) })])
      .finally(() => clearTimeout(t))
  }

  const tickOnce = async () => {
    if (closed) return
    if (!client) {
      if (Date.now() < retryAt) return
      try {
        client = await connect()
      } catch (err) {
        retryAt = Date.now() + 2 * tickMs
        log.warn({ err: String(err) }, 'lock connection failed')
        return
      }
      if (closed) { await client.end().catch(() => undefined); client = undefined; return }
    }
    const c = client
    const want = o.specs.filter(s => !held.has(s.name))
    const sentAt = Date.now()
    try {
      const res = await withTimeout(c.query<{ got: boolean }>(TRY_SQL, [want.map(s => s.key[0]), want.map(s => s.key[1])]), trustMs)
      if (c !== client) return
      provedAt = sentAt
      res.rows.forEach((r, i) => {
        const spec = want[i]!
        if (!r.got) return
        held.add(spec.name)
        counts.get(spec.name)!.acquired++
        log.info({ lease: spec.name }, 'lease acquired')
      })
    } catch (err) {
      lose(c, err)
    }
  }

  const tick = () => {
    ticking ??= tickOnce().finally(() => { ticking = undefined })
    return ticking
  }

  const holds = (name: string) => held.has(name) && Date.now() - provedAt < trustMs

  return {
    holds,
    mayRun(name) {
      if (!holds(name)) return false
      counts.get(name)!.runs++
      return true
    },
    async confirm(name) {
      if (holds(name)) return true
      if (!held.has(name) || closed) return false
      let timer: NodeJS.Timeout | undefined
      await Promise.race([tick(), new Promise<void>(resolve => { timer = setTimeout(resolve, trustMs) })]).finally(() => clearTimeout(timer))
      return holds(name)
    },
    states: () => o.specs.map(s => ({ name: s.name, held: holds(s.name), ...counts.get(s.name)! })),
    async start() {
      await tick()
      if (closed || timer) return
      timer = setInterval(() => { void tick() }, tickMs)
      timer.unref()
    },
    async close() {
      closed = true
      clearInterval(timer)
      await ticking
      const c = client
      client = undefined
      held.clear()
      await c?.end().catch(() => undefined)
    },
  }
}
