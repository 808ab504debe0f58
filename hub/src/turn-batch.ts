/**
 * Statements that arrive together go to Postgres together. Under load, many requests for different
 * users are parsed in the same turn of the event loop; each used to cost its own statement: a
 * socket write and a wake-up of a Postgres backend per request, which was the largest share of the
 * hub's CPU on `GET /hub/api/users/<name>` (bench-results/README.md, round 3). A `TurnBatch` holds
 * the keys asked for during one turn and, once that turn's I/O is handled (setImmediate), answers
 * them all with one statement over `= any($1)`.
 *
 * Nothing is cached: every read still runs after the request arrived, so it sees every write
 * committed before that (read-your-writes holds, on any replica). A request alone waits for one
 * loop turn, microseconds on an idle hub. The same goes for small writes that many flows make at
 * once (a spawn marking its server running): each caller still learns its own row's outcome.
 */
interface Pending<V, I> {
  readonly input: I
  readonly waiters: Array<{ resolve(v: V | undefined): void; reject(err: unknown): void }>
}

/** Answers a set of distinct keys (with each key's input); a key left out of the map is "not found". */
export type TurnBatchRun<V, I> = (keys: readonly string[], inputOf: (key: string) => I) => Promise<ReadonlyMap<string, V>>

/**
 * Keys (each with an optional input, e.g. the values to write) gathered over one turn, answered by
 * one `run` per `max` distinct keys. A key given twice in a turn is run once, with its first input.
 */
export class TurnBatch<V, I = undefined> {
  readonly #run: TurnBatchRun<V, I>
  readonly #max: number
  #pending = new Map<string, Pending<V, I>>()
  #scheduled = false

  constructor(run: TurnBatchRun<V, I>, max = 100) {
    this.#run = run
    this.#max = max
  }

  load(key: string, ...input: I extends undefined ? [] : [I]): Promise<V | undefined> {
    return new Promise<V | undefined>((resolve, reject) => {
      const pending = this.#pending.get(key)
      if (pending) pending.waiters.push({ resolve, reject })
      else this.#pending.set(key, { input: input[0] as I, waiters: [{ resolve, reject }] })
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    const batch = this.#pending
    this.#pending = new Map()
    const inputOf = (k: string) => batch.get(k)!.input
    const keys = [...batch.keys()]
    for (let i = 0; i < keys.length; i += this.#max) {
      const chunk = keys.slice(i, i + this.#max)
      const settle = (fn: (w: Pending<V, I>['waiters'][number], k: string) => void) => { for (const k of chunk) for (const w of batch.get(k)!.waiters) fn(w, k) }
      // a throwing `run` (not only a rejected promise) fails its chunk, never the process
      Promise.resolve().then(() => this.#run(chunk, inputOf))
        .then(found => settle((w, k) => w.resolve(found.get(k))), err => settle(w => w.reject(err)))
    }
  }
}
