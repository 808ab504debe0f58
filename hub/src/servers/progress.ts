/** One spawn's progress: the events so far (replayed to late subscribers) and live listeners. */
export interface ProgressEvent {
  readonly progress: number
  readonly message: string
  readonly html_message?: string
  readonly ready?: true
  readonly failed?: true
  readonly url?: string
}

export type SpawnPhase = 'queued' | 'starting' | 'ready' | 'failed'

export class SpawnProgress {
  readonly events: ProgressEvent[] = []
  readonly controller = new AbortController()
  phase: SpawnPhase = 'queued'
  /** While queued: the current place in line (1 = next). */
  queuePosition: (() => number) | undefined
  readonly #listeners = new Set<(e: ProgressEvent) => void>()
  readonly finished: Promise<void>
  #resolve!: () => void

  constructor() {
    this.finished = new Promise(r => { this.#resolve = r })
  }

  get done(): boolean { return this.phase === 'ready' || this.phase === 'failed' }

  emit(event: ProgressEvent): void {
    if (this.done) return
    // The stream owns `ready`/`failed`; a spawner's own event never ends it (contract §6).
    const { ready: _r, failed: _f, ...clean } = event
    // Progress never goes backwards on the user's bar, whatever order the sources report in.
    const last = this.events[this.events.length - 1]?.progress ?? 0
    this.#push(clean.progress < last ? { ...clean, progress: last } : clean)
  }

  finish(event: ProgressEvent & ({ ready: true } | { failed: true })): void {
    if (this.done) return
    this.phase = event.ready ? 'ready' : 'failed'
    this.queuePosition = undefined
    this.#push(event)
    this.#listeners.clear()
    this.#resolve()
  }

  /** Replays the past events, then calls `listener` for each new one; returns the unsubscribe. */
  subscribe(listener: (e: ProgressEvent) => void): () => void {
    for (const e of this.events) listener(e)
    if (this.done) return () => undefined
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #push(e: ProgressEvent): void {
    // Bounded: a chatty spawner cannot grow a record without limit.
    if (this.events.length < 500) this.events.push(e)
    for (const l of this.#listeners) l(e)
  }
}
