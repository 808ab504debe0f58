/**
 * Restart-with-backoff for the spawner's watches (the pod informer and the event stream). The
 * client's ListWatch does not restart itself on errors other than 410, and a bare Watch never
 * does, so each watch owns one of these: `failed` schedules the next `start`, `healthy` resets
 * the backoff once data flows again, `stop` ends it for good.
 */
import type { Logger } from 'pino'
import { statusOf } from './kube-retry.js'

const MAX_BACKOFF_MS = 30_000

/** Full-jitter exponential backoff for restarting a failed list/watch, capped. */
function restartDelay(failures: number): number {
  return Math.random() * Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 10))
}

export class Restarter {
  readonly #run: () => Promise<void>
  readonly #log: Logger
  #failures = 0
  #stopped = false
  #timer: NodeJS.Timeout | undefined

  /** `run` is one attempt: it starts the watch and rejects (or calls `failed`) when it fails. */
  constructor(run: () => Promise<void>, log: Logger) {
    this.#run = run
    this.#log = log
  }

  get stopped(): boolean {
    return this.#stopped
  }

  /** One attempt now; a rejection counts as a failure. */
  start(): void {
    void this.#run().catch(err => this.failed(err))
  }

  /** The watch delivered data: the next failure starts from the shortest delay again. */
  healthy(): void {
    this.#failures = 0
  }

  /** The watch failed: log it and schedule the next attempt (only one is ever pending). */
  failed(err: unknown): void {
    if (this.#stopped) return
    this.#failures++
    const delay = restartDelay(this.#failures)
    this.#log.warn({ err: (err as Error)?.message ?? String(err), status: statusOf(err), delayMs: Math.round(delay) }, 'watch failed; restarting')
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.start(), delay)
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
