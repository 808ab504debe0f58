/**
 * What a child generator (worker.ts) sends its parent (child-generators.ts) over IPC, and the two
 * ends of it: BatchRecorder collects a child's samples, and applyBatch merges a batch into the
 * step's one Recorder. A child sends a batch every BATCH_MS, never a message per sample: at 3,000
 * class users that would be a thousand IPC messages a second, each costing both processes a
 * JSON round and a syscall.
 */
import type { Recorder, RecorderSink } from '../histogram.js'
import type { UserState, UserTally } from '../simulated-user.js'
import type { VisitPlan } from '../scenarios/users.js'

export const BATCH_MS = 250

/** Parent → child, once: the step's plan, the users dealt to this child, and the shared clock. */
export interface StartMessage {
  readonly type: 'start'
  readonly plan: VisitPlan
  readonly indices: readonly number[]
  /** The step's t0 and the end of work, wall-clock epoch ms (performance.timeOrigin + performance.now()). */
  readonly t0Epoch: number
  readonly workUntilEpoch: number
}

/** One second of a child's own load. */
export interface LoadSample {
  /** CPU over the second, % of one core (process.cpuUsage delta). */
  readonly cpu: number
  /** Event-loop delay p99 over the second, ms. */
  readonly lagP99: number
}

/** A user whose visit ended: its final state and tally. */
export interface FinishedUser {
  readonly index: number
  readonly state: UserState
  readonly tally: UserTally
}

/** Child → parent, every BATCH_MS. Times are wall-clock epoch ms. */
export interface Batch {
  readonly type: 'batch'
  /** [key, ms, at] */
  readonly samples: Array<[string, number, number]>
  /** [key, at] */
  readonly errors: Array<[string, number]>
  readonly counts: Record<string, number>
  /** [outcome, message] */
  readonly notes: Array<[string, string]>
  /** [user index, from (null: it arrived), to] */
  readonly states: Array<[number, UserState | null, UserState]>
  readonly finished: FinishedUser[]
  readonly load: LoadSample[]
}

/** Child → parent: `ready` once it listens (its fd limit raised); `done` after its last batch, when every user's visit ended. */
export type ChildMessage = Batch | { readonly type: 'ready' } | { readonly type: 'done'; readonly silent: number }

/** Wall-clock epoch ms, comparable across processes. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now()
}

/** A child's recorder: keeps what its users record until the next batch. */
export class BatchRecorder implements RecorderSink {
  #b = BatchRecorder.#empty()
  readonly #noted = new Map<string, number>()

  static #empty(): Batch {
    return { type: 'batch', samples: [], errors: [], counts: {}, notes: [], states: [], finished: [], load: [] }
  }

  record(key: string, ms: number): void { this.#b.samples.push([key, ms, epochNow()]) }
  error(key: string): void { this.#b.errors.push([key, epochNow()]) }
  count(outcome: string, n = 1): void { this.#b.counts[outcome] = (this.#b.counts[outcome] ?? 0) + n }

  /** As Recorder.note: the parent keeps 5 per outcome, so more are not sent. */
  note(outcome: string, message: string): void {
    const n = this.#noted.get(outcome) ?? 0
    if (n >= 5) return
    this.#noted.set(outcome, n + 1)
    this.#b.notes.push([outcome, message.slice(0, 300)])
  }

  state(index: number, from: UserState | null, to: UserState): void { this.#b.states.push([index, from, to]) }
  finished(user: FinishedUser): void { this.#b.finished.push(user) }
  load(sample: LoadSample): void { this.#b.load.push(sample) }

  /** Everything since the last take. */
  take(): Batch {
    const b = this.#b
    this.#b = BatchRecorder.#empty()
    return b
  }
}

/** Merge a child's samples, errors, counts and notes into the step's recorder, each sample in the second it was taken. */
export function applyBatch(recorder: Recorder, b: Pick<Batch, 'samples' | 'errors' | 'counts' | 'notes'>): void {
  // epoch ms → ms since the recorder's t0 (performance.now() of this process)
  const offset = performance.timeOrigin + recorder.t0
  for (const [key, ms, at] of b.samples) recorder.record(key, ms, at - offset)
  for (const [key, at] of b.errors) recorder.error(key, at - offset)
  for (const [outcome, n] of Object.entries(b.counts)) recorder.count(outcome, n)
  for (const [outcome, message] of b.notes) recorder.note(outcome, message)
}
