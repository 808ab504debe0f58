/**
 * Spawns go through here: at most `concurrency` run at once, the rest wait in arrival order
 * (fair: first come, first served), and past `maxQueued` waiting a new request is refused so the
 * API can answer 429 with Retry-After instead of piling up work it cannot finish.
 */
export class QueueFullError extends Error {
  readonly code = 'HUB_SPAWN_QUEUE_FULL'
}

interface Waiter { ticket: number; start: () => void; cancel: (err: Error) => void }

export class AdmissionQueue {
  readonly #concurrency: number
  readonly #maxQueued: number
  #running = 0
  #nextTicket = 0
  #served = 0
  readonly #waiting: Waiter[] = []

  constructor(options: { concurrency: number; maxQueued: number }) {
    this.#concurrency = Math.max(1, options.concurrency)
    this.#maxQueued = Math.max(0, options.maxQueued)
  }

  get running(): number { return this.#running }
  get queued(): number { return this.#waiting.length }

  /** Would a new request be refused right now? */
  get full(): boolean {
    return this.#running >= this.#concurrency && this.#waiting.length >= this.#maxQueued
  }

  /**
   * Run `task` when a slot is free. `onQueued` receives a function that tells the current place
   * in line (1 = next), valid while waiting. `signal` withdraws a waiting request.
   */
  async run<T>(task: () => Promise<T>, options: { signal?: AbortSignal; onQueued?: (position: () => number) => void } = {}): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#maxQueued) throw new QueueFullError(`spawn queue is full (${this.#waiting.length} waiting)`)
      const ticket = this.#nextTicket++
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { ticket, start: resolve, cancel: reject }
        this.#waiting.push(waiter)
        options.onQueued?.(() => Math.max(1, ticket - this.#served + 1))
        options.signal?.addEventListener('abort', () => {
          const i = this.#waiting.indexOf(waiter)
          if (i >= 0) {
            this.#waiting.splice(i, 1)
            reject(options.signal!.reason instanceof Error ? options.signal!.reason : new Error('cancelled'))
          }
        }, { once: true })
      })
    }
    this.#running++
    try {
      return await task()
    } finally {
      this.#running--
      this.#next()
    }
  }

  #next(): void {
    const w = this.#waiting.shift()
    if (!w) return
    this.#served = w.ticket + 1
    w.start()
  }
}
