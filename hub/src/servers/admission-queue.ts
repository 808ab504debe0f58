/**
 * Spawns go through here: at most `concurrency` run at once, the rest wait in arrival order
 * (fair: first come, first served), and past `maxQueued` waiting a new request is refused so the
 * API can answer 429 with Retry-After instead of piling up work it cannot finish.
 *
 * Admission is synchronous (`enter`), so two requests racing for the last place cannot both get
 * it; the work itself runs later, when the returned pass says so.
 */
import { HubError } from '../errors.js'

/** HUB_SPAWN_QUEUE_FULL: 429 with Retry-After at the edge; `waiting` is for the log. */
export class QueueFullError extends HubError {
  constructor(readonly waiting?: number) {
    super('HUB_SPAWN_QUEUE_FULL')
    this.name = 'QueueFullError'
  }
}

export interface QueuePass {
  /** Resolves when a slot is ours; rejects if the pass is cancelled while waiting. */
  readonly ready: Promise<void>
  /** Our place in line while waiting (1 = next), 0 once running. */
  position(): number
  /** Give the slot (or the place in line) back. Idempotent. */
  release(): void
}

interface Waiter { ticket: number; start: () => void; fail: (err: Error) => void }

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

  /** Take a slot now, or a place in line; throws QueueFullError when the line is full. */
  enter(_serverId?: string): QueuePass {
    let state: 'running' | 'waiting' | 'done' = 'waiting'
    if (this.#running < this.#concurrency) {
      this.#running++
      state = 'running'
      return this.#pass(Promise.resolve(), () => 0, () => { if (state === 'running') { state = 'done'; this.#finish() } })
    }
    if (this.#waiting.length >= this.#maxQueued) throw new QueueFullError(this.#waiting.length)
    const ticket = this.#nextTicket++
    let waiter!: Waiter
    const ready = new Promise<void>((resolve, reject) => {
      waiter = { ticket, start: () => { state = 'running'; resolve() }, fail: reject }
    })
    ready.catch(() => undefined) // a cancelled pass need not be awaited
    this.#waiting.push(waiter)
    return this.#pass(ready, () => (state === 'waiting' ? Math.max(1, ticket - this.#served + 1) : 0), () => {
      if (state === 'running') { state = 'done'; this.#finish() }
      else if (state === 'waiting') {
        state = 'done'
        const i = this.#waiting.indexOf(waiter)
        if (i >= 0) this.#waiting.splice(i, 1)
        waiter.fail(new Error('cancelled'))
      }
    })
  }

  #pass(ready: Promise<void>, position: () => number, release: () => void): QueuePass {
    return { ready, position, release }
  }

  #finish(): void {
    const w = this.#waiting.shift()
    if (!w) { this.#running--; return }
    this.#served = w.ticket + 1
    w.start() // the slot passes straight to the next in line
  }
}
