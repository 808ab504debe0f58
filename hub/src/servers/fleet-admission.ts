/**
 * The spawn admission queue, fleet-wide (issue #14): `concurrent_spawn_limit` holds for every hub
 * together, the queue is first come, first served across hubs, and past `spawn_queue_limit`
 * waiting a spawn is refused (429) as before. State in Postgres (migration 0009):
 * - spawn_slots: one row per slot; a spawn takes a free one in one statement
 *   (`for update skip locked`), so two hubs never take the same slot and never exceed the limit;
 * - spawn_queue: a ticket per waiting spawn; position = earlier tickets + 1, the same from every hub.
 * A freed slot goes to the earliest ticket whoever holds it (PROMOTE, run by the hub that freed
 * it); the ticket's hub is told on SLOT_CHANNEL and, should that notification be lost, sees the
 * grant at its next check (every second while it has waiters). Slots and tickets of spawns that
 * are no longer pending under their owner (a dead hub's, failed by owner-sweep.ts) are freed by
 * `heal`, which the sweeping hub runs each second.
 *
 * The single-hub fast path is two statements per spawn: take a slot, give it back (which also
 * says whether anyone waits, so the promotion runs only then).
 */
import type { Db } from '../db.js'
import { runPrepared } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import type { NotifyBus } from '../fleet/notify-bus.js'
import { LOCK_SPACE } from '../fleet/fleet.js'
import { sql } from 'kysely'
import { QueueFullError, type QueuePass } from './admission-queue.js'

export const SLOT_CHANNEL = 'fleethub_spawn_slots'
const CHECK_MS = 1000

const ENSURE_SLOTS = 'insert into spawn_slots (slot) select generate_series(0, $1::int - 1) on conflict do nothing'

// Only when nobody waits: a spawn never overtakes a ticket.
const TAKE = `with free as (select slot from spawn_slots where server_id is null and slot < $3::int order by slot limit 1 for update skip locked)
update spawn_slots s set server_id = $1::bigint, owner = $2::text, taken = now() from free
where s.slot = free.slot and not exists (select 1 from spawn_queue) returning s.slot`

/**
 * (LOCK_SPACE + 3, 0): a transaction's advisory lock, held while a ticket is added and taken in a
 * statement of its own, so that the insert's snapshot sees every ticket added before: two hubs
 * never both take the last place in line.
 */
const QUEUE_LOCK = [LOCK_SPACE + 3, 0] as const

const RELEASE = `with r as (update spawn_slots set server_id = null, owner = null, taken = null where server_id = $1::bigint returning slot),
q as (delete from spawn_queue where server_id = $1::bigint returning id)
select exists (select 1 from spawn_queue) as waiting`

// One free slot to the earliest ticket (skipping tickets another promoter is handing out now).
const PROMOTE = `with free as (select slot from spawn_slots where server_id is null and slot < $1::int order by slot limit 1 for update skip locked),
head as (select q.id, q.server_id, q.owner from spawn_queue q where exists (select 1 from free) order by q.id limit 1 for update skip locked),
took as (update spawn_slots s set server_id = head.server_id, owner = head.owner, taken = now() from free, head where s.slot = free.slot returning s.server_id, s.owner),
gone as (delete from spawn_queue q using took where q.server_id = took.server_id)
select server_id::text as server_id, owner from took`

const POSITIONS = `select server_id::text as server_id, pos::int as pos from
(select server_id, owner, row_number() over (order by id) as pos from spawn_queue) q where owner = $1::text`

const GRANTED = `select server_id::text as server_id from spawn_slots where owner = $1::text and server_id = any($2::bigint[])`

const HEAL = `with q as (delete from spawn_queue q where not exists (select 1 from servers s where s.id = q.server_id and s.state = 'pending' and s.owner = q.owner) returning 1),
s as (update spawn_slots l set server_id = null, owner = null, taken = null where l.server_id is not null
  and not exists (select 1 from servers s where s.id = l.server_id and s.state = 'pending' and s.owner = l.owner) returning 1)
select (select count(*) from q)::int + (select count(*) from s)::int as n`

interface Waiter { readonly start: () => void; readonly fail: (err: Error) => void; position: number }

export interface FleetAdmissionOptions {
  readonly db: Db
  readonly bus: NotifyBus
  readonly hubId: string
  readonly log: Logger
  /** concurrent_spawn_limit: slots in the fleet. */
  readonly concurrency: number
  /** spawn_queue_limit: tickets in the fleet. */
  readonly maxQueued: number
  /** A waiting spawn of this hub moved in line (tell the other hubs' streams). */
  readonly onPosition?: (serverId: string, position: number) => void
}

export class FleetAdmission {
  readonly #o: FleetAdmissionOptions
  readonly #concurrency: number
  readonly #log: Logger
  readonly #waiting = new Map<string, Waiter>()
  readonly #running = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #promoting: Promise<void> | undefined
  #again = false

  constructor(o: FleetAdmissionOptions) {
    this.#o = o
    this.#concurrency = Math.max(1, o.concurrency)
    this.#log = o.log.child({ component: 'admission' })
    o.bus.subscribe(SLOT_CHANNEL, {
      message: payload => {
        let m: { to?: unknown; s?: unknown }
        try { m = JSON.parse(payload) as typeof m } catch { return }
        if (m.to === o.hubId && typeof m.s === 'string') this.#grant(m.s)
      },
      resync: () => { void this.#check() },
    })
  }

  /** Spawns of this hub holding a slot / waiting for one. */
  get running(): number { return this.#running.size }
  get queued(): number { return this.#waiting.size }

  async start(): Promise<void> {
    await runPrepared(this.#o.db, { sql: ENSURE_SLOTS, parameters: [this.#concurrency] })
    this.#timer = setInterval(() => { if (this.#waiting.size > 0) void this.#check() }, CHECK_MS)
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
    for (const w of this.#waiting.values()) w.fail(new Error('cancelled'))
    this.#waiting.clear()
  }

  /** A slot now, or a ticket in line; throws QueueFullError past the fleet's bound. */
  async enter(serverId: string): Promise<QueuePass> {
    const { db, hubId } = this.#o
    if ((await runPrepared(db, { sql: TAKE, parameters: [serverId, hubId, this.#concurrency] })).length === 1) {
      this.#running.add(serverId)
      return { ready: Promise.resolve(), position: () => 0, release: () => this.#release(serverId) }
    }
    const ticket = await db.transaction().execute(async trx => {
      await sql`select pg_advisory_xact_lock(${QUEUE_LOCK[0]}::int4, ${QUEUE_LOCK[1]}::int4)`.execute(trx)
      const { rows } = await sql<{ id: string }>`insert into spawn_queue (server_id, owner) select ${serverId}::bigint, ${hubId}::text
        where (select count(*) from spawn_queue) < ${this.#o.maxQueued}::int returning id::text as id`.execute(trx)
      return rows[0]
    })
    if (!ticket) throw new QueueFullError()
    let waiter!: Waiter
    const ready = new Promise<void>((resolve, reject) => { waiter = { start: resolve, fail: reject, position: 1 } })
    ready.catch(() => undefined)
    this.#waiting.set(serverId, waiter)
    await this.#check() // a slot may have freed meanwhile; and the real place in line
    return { ready, position: () => (this.#waiting.get(serverId) === waiter ? waiter.position : 0), release: () => this.#release(serverId) }
  }

  /** Free what the spawn holds (slot or ticket); idempotent. */
  #release(serverId: string): void {
    const w = this.#waiting.get(serverId)
    if (w) { this.#waiting.delete(serverId); w.fail(new Error('cancelled')) }
    else if (!this.#running.delete(serverId)) return
    runPrepared<{ waiting: boolean }>(this.#o.db, { sql: RELEASE, parameters: [serverId] })
      .then(([r]) => { if (r?.waiting) this.promote() })
      .catch(err => this.#log.warn({ err: String(err) }, 'could not free a spawn slot; the sweep will'))
  }

  #grant(serverId: string): void {
    const w = this.#waiting.get(serverId)
    if (!w) return
    this.#waiting.delete(serverId)
    this.#running.add(serverId)
    w.start()
    this.#o.onPosition?.(serverId, 0)
  }

  /** Hand free slots to the earliest tickets, telling their hubs (one promotion pass at a time per hub). */
  promote(): void {
    if (this.#promoting) { this.#again = true; return }
    this.#promoting = this.#promoteAll()
      .catch(err => this.#log.warn({ err: String(err) }, 'spawn slot hand-over failed; retried within a second'))
      .finally(() => {
        this.#promoting = undefined
        if (this.#again) { this.#again = false; this.promote() }
      })
  }

  async #promoteAll(): Promise<void> {
    for (;;) {
      const rows = await runPrepared<{ server_id: string; owner: string }>(this.#o.db, { sql: PROMOTE, parameters: [this.#concurrency] })
      if (rows.length === 0) return
      for (const r of rows) {
        if (r.owner === this.#o.hubId) this.#grant(r.server_id)
        else this.#o.bus.publish(SLOT_CHANNEL, JSON.stringify({ to: r.owner, s: r.server_id }))
      }
    }
  }

  /** Grants this hub missed, free slots nobody handed over, and its waiters' places in line. */
  async #check(): Promise<void> {
    const { db, hubId } = this.#o
    try {
      this.promote()
      await this.#promoting
      const ids = [...this.#waiting.keys()]
      if (ids.length === 0) return
      for (const r of await runPrepared<{ server_id: string }>(db, { sql: GRANTED, parameters: [hubId, ids] })) this.#grant(r.server_id)
      for (const r of await runPrepared<{ server_id: string; pos: number }>(db, { sql: POSITIONS, parameters: [hubId] })) {
        const w = this.#waiting.get(r.server_id)
        if (!w || w.position === r.pos) continue
        w.position = r.pos
        this.#o.onPosition?.(r.server_id, r.pos)
      }
    } catch (err) {
      this.#log.warn({ err: String(err) }, 'spawn queue check failed')
    }
  }

  /** Free the slots and tickets of spawns no longer pending under their owner (a dead hub's); then hand them out. */
  async heal(): Promise<number> {
    const [r] = await runPrepared<{ n: number }>(this.#o.db, { sql: HEAL, parameters: [] })
    if (r && r.n > 0) this.promote()
    return r?.n ?? 0
  }
}
