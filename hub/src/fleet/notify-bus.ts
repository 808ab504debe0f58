/**
 * The fleet's notification bus (issue #14): one dedicated LISTEN connection per hub process, never
 * one from the pool (a pooled connection goes back to the pool and stops listening). Postgres
 * keeps no notification for a session that is not connected, so after a reconnect every
 * subscriber is told to resynchronise: it drops its caches or re-reads what it follows.
 *
 * Liveness is proved, not assumed: a heartbeat (`select 1`) runs on the listening connection every
 * `heartbeatMs`. Postgres sends a listening session its pending notifications before it answers a
 * query, so an answered heartbeat sent at time S means every notification committed before S has
 * been received. `fresh()` is true only while such a proof is younger than `staleAfterMs`; caches
 * that rely on notifications serve entries only while it holds, which bounds staleness by
 * `staleAfterMs` even when the connection dies silently (a half-open socket shows no error).
 *
 * Publishing goes through the listening connection while it is fresh (a burst of invalidations
 * never waits behind a saturated pool) and through the pool otherwise. Messages published in the
 * same event-loop turn leave in one round trip.
 */
import pg from 'pg'
import type { Logger } from '../../../core/src/log.js'

/** Postgres refuses NOTIFY payloads of 8000 bytes or more. */
export const MAX_PAYLOAD_BYTES = 7999

/** The part of pg.Pool the bus publishes through. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>
}

export interface BusSubscriber {
  /** A payload published on the channel by any hub, this one included. */
  message(payload: string): void
  /** The connection was lost and is back; what was published meanwhile is lost: drop caches, re-read. */
  resync(): void
}

export interface BusHealth {
  readonly connected: boolean
  /** True while a heartbeat younger than `staleAfterMs` was answered. */
  readonly fresh: boolean
  /** Reconnections since start (the first connection does not count). */
  readonly reconnects: number
  readonly published: number
  readonly publishFailures: number
}

export interface NotifyBusOptions {
  readonly url: string
  /** The pool: publishing must not depend on the listening connection being up. */
  readonly publisher: Queryable
  readonly log: Logger
  /** Postgres application_name of the listening connection (operators and tests find it so). */
  readonly applicationName: string
  /** Heartbeat period on the listening connection, ms. Default 250. */
  readonly heartbeatMs?: number
  /** How old the last answered heartbeat may be for `fresh()`, ms. Default 1000. */
  readonly staleAfterMs?: number
  /** First reconnect delay, ms; doubled up to `reconnectMaxMs`. Default 100. */
  readonly reconnectMinMs?: number
  /** Longest reconnect delay, ms. Default 5000. */
  readonly reconnectMaxMs?: number
}

export interface NotifyBus {
  /** Follow a channel (LISTEN). Call before `start()` or at any time after. */
  subscribe(channel: string, subscriber: BusSubscriber): void
  /** NOTIFY `channel` with `payload` (under MAX_PAYLOAD_BYTES); sent with the rest of this turn's messages. */
  publish(channel: string, payload: string): void
  /** Whether notifications can be trusted now (see the file comment). */
  fresh(): boolean
  health(): BusHealth
  /** Connect and listen; rejects if the first connection fails. */
  start(): Promise<void>
  /** Send what is queued, stop listening, close the connection. */
  close(): Promise<void>
}

const NOTIFY_SQL = 'select pg_notify(c, p) from unnest($1::text[], $2::text[]) as m(c, p)'

export function createNotifyBus(o: NotifyBusOptions): NotifyBus {
  const heartbeatMs = o.heartbeatMs ?? 250
  const staleAfterMs = o.staleAfterMs ?? 1000
  const minDelay = o.reconnectMinMs ?? 100
  const maxDelay = o.reconnectMaxMs ?? 5000
  const log = o.log.child({ component: 'notify-bus' })
  const subscribers = new Map<string, BusSubscriber[]>()
  let client: pg.Client | undefined
  let provedAt = 0
  let reconnects = 0, published = 0, publishFailures = 0
  let delay = minDelay
  let closed = false
  let heartbeat: NodeJS.Timeout | undefined
  let retry: NodeJS.Timeout | undefined
  let beating = false
  let queue: Array<[string, string]> = []
  let sending: Promise<void> = Promise.resolve()
  let scheduled = false
  let listening = 0 // LISTENs issued on a live connection and not yet answered: until then, not fresh

  const fresh = () => client !== undefined && listening === 0 && Date.now() - provedAt < staleAfterMs

  const deliver = (channel: string, payload: string) => {
    for (const s of subscribers.get(channel) ?? []) {
      try { s.message(payload) } catch (err) { log.error({ err, channel }, 'notification handler failed') }
    }
  }

  const lost = (c: pg.Client, err: unknown) => {
    if (c !== client) return
    client = undefined
    provedAt = 0
    log.warn({ err: String(err) }, 'listen connection lost; caches bypassed until it is back')
    c.end().catch(() => undefined)
    scheduleReconnect()
  }

  // One statement at a time on the listening connection (LISTENs of late subscribers and the
  // heartbeat may overlap): pg deprecates a second query on a client still running one.
  let tail: Promise<unknown> = Promise.resolve()
  const serially = <T>(run: () => Promise<T>): Promise<T> => {
    const next = tail.then(run, run)
    tail = next.catch(() => undefined)
    return next
  }
  const listen = (c: pg.Client, channel: string) => serially(() => c.query(`listen ${c.escapeIdentifier(channel)}`))

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: o.url, application_name: o.applicationName.slice(0, 63), keepAlive: true, connectionTimeoutMillis: 5000 })
    let failed: unknown // the connection broke while being set up, before `client` names it
    c.on('error', err => { failed ??= err; lost(c, err) })
    c.on('end', () => { failed ??= new Error('connection ended'); lost(c, failed) })
    c.on('notification', m => deliver(m.channel, m.payload ?? ''))
    try {
      await c.connect()
      const sentAt = Date.now()
      for (const channel of subscribers.keys()) await listen(c, channel)
      if (failed) throw failed
      provedAt = sentAt
    } catch (err) {
      c.end().catch(() => undefined)
      throw err
    }
    if (closed) { await c.end().catch(() => undefined); return }
    client = c
  }

  const scheduleReconnect = () => {
    if (closed || retry) return
    const wait = Math.round(delay * (0.8 + Math.random() * 0.4))
    delay = Math.min(delay * 2, maxDelay)
    retry = setTimeout(() => {
      retry = undefined
      connect().then(() => {
        if (closed) return
        reconnects++
        delay = minDelay
        log.info({ reconnects }, 'listen connection back; subscribers resynchronise')
        for (const list of subscribers.values()) for (const s of list) {
          try { s.resync() } catch (err) { log.error({ err }, 'resync failed') }
        }
      }, err => {
        log.warn({ err: String(err), retryMs: delay }, 'listen reconnect failed')
        scheduleReconnect()
      })
    }, wait)
    retry.unref()
  }

  // Prove the connection: a heartbeat not answered within staleAfterMs means the socket is dead.
  const beat = () => {
    const c = client
    if (!c || beating) return
    beating = true
    const sentAt = Date.now()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('heartbeat timed out')), staleAfterMs) })
    Promise.race([serially(() => c.query('select 1')), timeout])
      .then(() => { if (c === client) provedAt = sentAt }, err => lost(c, err))
      .finally(() => { clearTimeout(timer); beating = false })
  }

  const send = async (batch: Array<[string, string]>): Promise<void> => {
    const values = [batch.map(m => m[0]), batch.map(m => m[1])]
    // Through the pool, never the listening connection: that one runs the heartbeat, and pg
    // deprecates (pg@9 removes) a second query on a client still running one.
    await o.publisher.query(NOTIFY_SQL, values)
    published += batch.length
  }

  const flush = () => {
    scheduled = false
    const batch = queue
    queue = []
    if (batch.length === 0) return sending
    sending = sending.then(() => send(batch)).catch(err => {
      publishFailures += batch.length
      log.error({ err: String(err), lost: batch.length }, 'could not publish notifications')
    })
    return sending
  }

  return {
    subscribe(channel, subscriber) {
      const list = subscribers.get(channel)
      if (list) { list.push(subscriber); return }
      subscribers.set(channel, [subscriber])
      const c = client
      if (!c) return // the next connection listens to every channel
      listening++
      listen(c, channel).then(() => { listening-- }, err => { listening--; lost(c, err) })
    },
    publish(channel, payload) {
      if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) throw new Error(`notification payload over ${MAX_PAYLOAD_BYTES} bytes on ${channel}`)
      queue.push([channel, payload])
      if (!scheduled) { scheduled = true; setImmediate(flush) }
    },
    fresh,
    health: () => ({ connected: client !== undefined, fresh: fresh(), reconnects, published, publishFailures }),
    async start() {
      await connect()
      heartbeat = setInterval(beat, heartbeatMs)
      heartbeat.unref()
    },
    async close() {
      closed = true
      clearInterval(heartbeat)
      clearTimeout(retry)
      await flush()
      const c = client
      client = undefined
      await c?.end().catch(() => undefined)
    },
  }
}
