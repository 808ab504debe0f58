/**
 * Latency recording: every sample kept (a load test of this size records at most a few million
 * numbers, 8 bytes each), so every percentile is computed from the samples themselves, never
 * interpolated from buckets. `Recorder` keeps one histogram per key (phase or endpoint) per step,
 * plus a 1-second time series of throughput and p50/p99 for the charts.
 */

/** p50/p90/p99/max of one key, in milliseconds (rounded to 0.1 ms). */
export interface LatencySummary {
  readonly count: number
  readonly errors: number
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export class Histogram {
  #samples = new Float64Array(1024)
  #n = 0
  #sorted = true
  errors = 0

  get count(): number { return this.#n }

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`not a latency: ${ms}`)
    if (this.#n === this.#samples.length) {
      const next = new Float64Array(this.#samples.length * 2)
      next.set(this.#samples)
      this.#samples = next
    }
    if (this.#n > 0 && ms < this.#samples[this.#n - 1]!) this.#sorted = false
    this.#samples[this.#n++] = ms
  }

  #view(): Float64Array {
    const v = this.#samples.subarray(0, this.#n)
    if (!this.#sorted) { v.sort(); this.#sorted = true }
    return v
  }

  /** The nearest-rank percentile (p in 0..100) of the recorded samples; NaN when empty. */
  percentile(p: number): number {
    if (this.#n === 0) return Number.NaN
    const v = this.#view()
    const rank = Math.min(this.#n, Math.max(1, Math.ceil((p / 100) * this.#n)))
    return v[rank - 1]!
  }

  summary(): LatencySummary {
    const r = (x: number) => Number.isNaN(x) ? 0 : Math.round(x * 10) / 10
    let sum = 0
    const v = this.#view()
    for (let i = 0; i < v.length; i++) sum += v[i]!
    return {
      count: this.#n, errors: this.errors, min: r(v[0] ?? 0), mean: r(this.#n ? sum / this.#n : 0),
      p50: r(this.percentile(50)), p90: r(this.percentile(90)), p99: r(this.percentile(99)), max: r(v[v.length - 1] ?? 0),
    }
  }
}

/** One second of the time series: completed operations, errors and p50/p99 across every key. */
export interface SeriesPoint {
  readonly t: number
  readonly ops: number
  readonly errors: number
  readonly p50: number
  readonly p99: number
}

/** What a simulated user records into: the Recorder itself, or a child generator's batching one (generator/worker.ts). */
export type RecorderSink = Pick<Recorder, 'record' | 'error' | 'count' | 'note'>

export class Recorder {
  readonly #keys = new Map<string, Histogram>()
  readonly #buckets = new Map<number, Histogram>()
  readonly #counts = new Map<string, number>()
  readonly #t0: number

  constructor(t0 = performance.now()) { this.#t0 = t0 }

  /** performance.now() that the time series counts from. */
  get t0(): number { return this.#t0 }

  /**
   * A latency sample for `key` (e.g. `phase:login`, `GET /hub/login`), in the time series' second
   * of `atMs` (ms since t0; default now): a child generator's samples land where they were taken.
   */
  record(key: string, ms: number, atMs = performance.now() - this.#t0): void {
    this.#hist(key).record(ms)
    this.#bucket(atMs).record(ms)
  }

  /** A failed operation under `key` (it counts as an error in the key and the time series), at `atMs` as record's. */
  error(key: string, atMs = performance.now() - this.#t0): void {
    this.#hist(key).errors++
    this.#bucket(atMs).errors++
  }

  #bucket(atMs: number): Histogram {
    // a child's clock can put a sample a hair before t0: it belongs to the first second
    const sec = Math.max(0, Math.floor(atMs / 1000))
    let b = this.#buckets.get(sec)
    if (!b) { b = new Histogram(); this.#buckets.set(sec, b) }
    return b
  }

  /** Count an outcome (`spawn_ok`, `error:5xx`, `leave:tidy`, …). */
  count(outcome: string, n = 1): void {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + n)
  }

  readonly #notes = new Map<string, string[]>()

  /** Keep an example message for an outcome (the first 5 per outcome), for the report. */
  note(outcome: string, message: string): void {
    const list = this.#notes.get(outcome) ?? []
    if (list.length < 5) list.push(message.slice(0, 300))
    this.#notes.set(outcome, list)
  }

  notes(): Record<string, string[]> {
    return Object.fromEntries(this.#notes)
  }

  counts(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a.localeCompare(b)))
  }

  get(key: string): Histogram | undefined { return this.#keys.get(key) }

  latencies(): Record<string, LatencySummary> {
    return Object.fromEntries([...this.#keys].sort(([a], [b]) => a.localeCompare(b)).map(([k, h]) => [k, h.summary()]))
  }

  series(): SeriesPoint[] {
    const last = Math.max(-1, ...this.#buckets.keys())
    const out: SeriesPoint[] = []
    for (let t = 0; t <= last; t++) {
      const b = this.#buckets.get(t)
      const s = b?.summary()
      out.push({ t, ops: b?.count ?? 0, errors: b?.errors ?? 0, p50: s?.p50 ?? 0, p99: s?.p99 ?? 0 })
    }
    return out
  }

  #hist(key: string): Histogram {
    let h = this.#keys.get(key)
    if (!h) { h = new Histogram(); this.#keys.set(key, h) }
    return h
  }
}
