/**
 * Activity reports to the hub (contract §4.3): the first right after start, then every interval
 * with ±10 % jitter, retried with bounded backoff (1 s start, 15 s max, 60 s total by default).
 * Like jupyterhub-singleuser 3.0 it re-sends the same timestamp when idle.
 */
import type { Logger } from 'pino'
import { errorSummary, sleep, type HubClient } from './hub-client.js'

/** Microseconds since the epoch (the hub wants microsecond timestamps). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

/** `2026-11-28T14:27:29.656693Z` */
export function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000)
  return new Date(ms).toISOString().replace('Z', `${String(us - ms * 1000).padStart(3, '0')}Z`)
}

export interface RetryPolicy {
  /** First retry delay; default 1000 ms. */
  readonly startMs: number
  /** Largest retry delay; default 15000 ms. */
  readonly maxMs: number
  /** Give up on one report after this long; default 60000 ms. */
  readonly totalMs: number
}

export const DEFAULT_ACTIVITY_RETRY: RetryPolicy = Object.freeze({ startMs: 1000, maxMs: 15_000, totalMs: 60_000 })

export interface ActivityReporterOptions {
  readonly client: HubClient
  readonly url: string
  readonly serverName: string
  /** Report period; 0 sends only the first report. */
  readonly intervalMs: number
  readonly retry?: RetryPolicy
  readonly log: Logger
}

export class ActivityReporter {
  readonly #o: ActivityReporterOptions
  readonly #stopped = new AbortController()
  #lastActivityUs = nowMicros()
  #timer: NodeJS.Timeout | undefined
  #inFlight: Promise<void> | undefined

  constructor(options: ActivityReporterOptions) {
    this.#o = options
  }

  /** Record user activity now (an HTTP request or a websocket message from a user). */
  touch(): void {
    this.#lastActivityUs = nowMicros()
  }

  get lastActivity(): string {
    return isoMicros(this.#lastActivityUs)
  }

  start(): void {
    this.#tick()
  }

  async stop(): Promise<void> {
    this.#stopped.abort()
    clearTimeout(this.#timer)
    await this.#inFlight
  }

  #tick(): void {
    if (this.#stopped.signal.aborted) return
    this.#inFlight = this.#report().finally(() => {
      this.#inFlight = undefined
      if (this.#o.intervalMs <= 0 || this.#stopped.signal.aborted) return
      const jitter = 0.9 + Math.random() * 0.2
      this.#timer = setTimeout(() => this.#tick(), Math.round(this.#o.intervalMs * jitter))
    })
  }

  async #report(): Promise<void> {
    const ts = this.lastActivity
    const body = { servers: { [this.#o.serverName]: { last_activity: ts } }, last_activity: ts }
    const retry = this.#o.retry ?? DEFAULT_ACTIVITY_RETRY
    const started = Date.now()
    for (let delay = retry.startMs, attempt = 1; ; delay = Math.min(delay * 2, retry.maxMs), attempt++) {
      try {
        await this.#o.client.postActivity(this.#o.url, body)
        this.#o.log.debug({ lastActivity: ts }, 'activity reported')
        return
      } catch (err) {
        const giveUp = Date.now() - started + delay > retry.totalMs || this.#stopped.signal.aborted
        this.#o.log.warn({ attempt, err: errorSummary(err), giveUp }, 'activity report failed')
        if (giveUp) return
        await sleep(delay, this.#stopped.signal)
      }
    }
  }
}
