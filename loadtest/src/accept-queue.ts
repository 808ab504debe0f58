/**
 * Accept-queue depth of the hub's and the proxy's listening sockets, sampled from outside (issue
 * #14; journal round 5): connections the kernel has completed but the process has not accepted
 * yet. A busy Node event loop accepts one connection per turn (libuv#3696), so this queue is where
 * a burst (the leave second of a ramp) waits before the hub sees a single byte of it.
 *
 * Read from /proc/net/tcp and /proc/net/tcp6 (what `ss -ltn` shows as Recv-Q of a LISTEN socket):
 * for a socket in state 0A (LISTEN) the kernel prints its accept queue length (sk_ack_backlog) as
 * `rx_queue`. No subprocess, so sampling every 100 ms is cheap, unless thousands of other sockets
 * listen (see SAMPLER_DUTY: then readings are spaced out). The kernel lists the listening
 * hash before the established one, so a file is read only up to its first non-LISTEN line: the
 * cost does not grow with the thousands of connections a load test holds open. (The backlog
 * limit, ss's Send-Q, is not in /proc/net/tcp; Node listens with backlog 511, capped by
 * net.core.somaxconn, which `machine` in the report does not need: a queue at the limit shows as
 * a flat maximum.) Linux only; elsewhere every read is empty.
 */
import fs from 'node:fs/promises'
import { Worker } from 'node:worker_threads'

const LISTEN = '0A'
// small reads: the kernel generates /proc/net/tcp a buffer at a time, so it stops soon after the listeners
const CHUNK = 16 * 1024
/** Files larger than this are not read further (a machine with that many listeners is not this one). */
const MAX_BYTES = 4 * 1024 * 1024

export interface ListenSocket {
  readonly port: number
  /** Connections waiting to be accepted. */
  readonly queue: number
}

/**
 * The LISTEN sockets of one /proc/net/tcp(6) text, in order, up to (not including) the first line of
 * another state; `done` is true once such a line (or the end) was seen.
 */
export function parseProcNetTcp(text: string): { sockets: ListenSocket[]; done: boolean } {
  const sockets: ListenSocket[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/)
    // "sl local_address rem_address st tx_queue:rx_queue ..."; the header's first field is "sl"
    if (f.length < 5 || f[0] === 'sl' || !f[0]!.endsWith(':')) continue
    if (f[3] !== LISTEN) return { sockets, done: true }
    const port = parseInt(f[1]!.slice(f[1]!.lastIndexOf(':') + 1), 16)
    const queue = parseInt(f[4]!.slice(f[4]!.indexOf(':') + 1), 16)
    if (Number.isFinite(port) && Number.isFinite(queue)) sockets.push({ port, queue })
  }
  return { sockets, done: false }
}

/**
 * The LISTEN sockets of one /proc/net file, read in chunks only as far as the listening sockets go.
 * Each chunk's complete lines are parsed once (a first version parsed everything read so far at
 * every chunk: with 10,000 listening user servers, 150 chunks of a 2.4 MB file, 170 ms a reading).
 */
async function readListening(file: string): Promise<ListenSocket[]> {
  let fh: fs.FileHandle
  try { fh = await fs.open(file, 'r') } catch { return [] }
  try {
    const sockets: ListenSocket[] = []
    let rest = ''
    const buf = Buffer.allocUnsafe(CHUNK)
    for (let read = 0; read < MAX_BYTES;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null)
      if (bytesRead === 0) break
      read += bytesRead
      const text = rest + buf.toString('latin1', 0, bytesRead)
      const cut = text.lastIndexOf('\n') + 1
      rest = text.slice(cut)
      const parsed = parseProcNetTcp(text.slice(0, cut))
      sockets.push(...parsed.sockets)
      if (parsed.done) return sockets
    }
    if (rest !== '') sockets.push(...parseProcNetTcp(rest).sockets)
    return sockets
  } finally {
    await fh.close()
  }
}

/**
 * Accept-queue length per port of interest: the sum over every LISTEN socket on that port
 * (IPv4 and IPv6, any address), or undefined for a port nothing listens on.
 */
export async function acceptQueues(ports: readonly number[], files: readonly string[] = ['/proc/net/tcp', '/proc/net/tcp6']): Promise<Map<number, number | undefined>> {
  const out = new Map<number, number | undefined>(ports.map(p => [p, undefined]))
  for (const [i, file] of files.entries()) {
    // A file after the first is read only for ports the first did not have: a file with no
    // listener of ours costs a walk of the kernel's whole established hash (/proc/net/tcp6 with
    // IPv4 listeners: ~3 ms of system time a reading, where /proc/net/tcp costs ~0.5 ms).
    if (i > 0 && [...out.values()].every(q => q !== undefined)) break
    for (const s of await readListening(file)) {
      if (!out.has(s.port)) continue
      out.set(s.port, (out.get(s.port) ?? 0) + s.queue)
    }
  }
  return out
}

/**
 * The sampler's share of one core at most. Each virtual user server listens on its own address, so
 * at 10,000 pods /proc/net/tcp lists 10,000 listeners before the hub's and the proxy's are all
 * seen: a reading then costs ~40 ms of CPU, and every 100 ms that was 40% of a core, counted as the
 * generator's (issue #16: a generator at 86% with its users in child processes).
 */
export const SAMPLER_DUTY = 0.05

/** The wait before the next reading: the asked interval, or longer so that readings costing `costMs` keep to SAMPLER_DUTY. */
export function pacedDelayMs(costMs: number, intervalMs: number, duty = SAMPLER_DUTY): number {
  return Math.max(intervalMs, Math.ceil(costMs * (1 / duty - 1)))
}

export interface AcceptQueueSummary {
  readonly port: number
  /** Samples taken while the socket was listening. */
  readonly samples: number
  /** The mean time between samples: the asked interval, or longer where readings were dear (SAMPLER_DUTY). */
  readonly intervalMs: number
  readonly max: number
  readonly p99: number
  readonly p90: number
  readonly mean: number
  /** Share of samples with a connection waiting (0..1). */
  readonly nonEmpty: number
  /** Per second since the sampler started: the largest queue seen in that second. */
  readonly perSecondMax: Array<[number, number]>
  /** Where the sampling loop ran: a worker thread, or (fallback) the generator's own thread, and why. */
  readonly sampledOn: string
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]!
}

/**
 * The sampling loop in a worker thread: the generator's own event loop lags by 100 ms and more
 * under load (the report's "loop lag"), and a timer there would sample least when the hub is
 * busiest. The worker imports this module (dist's .js; under tsx, the .ts through tsx's tsImport,
 * since an eval'd worker does not get the --import hooks) and posts each reading with its
 * wall-clock time.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads')
const { module, tsx, ports, files, intervalMs, duty } = workerData
const load = tsx ? import(tsx).then(api => api.tsImport(module, module)) : import(module)
load.then(m => {
  let busy, timer, stopped = false
  const tick = () => {
    const at = performance.timeOrigin + performance.now()
    busy = m.acceptQueues(ports, files ?? undefined)
      .then(q => parentPort.postMessage({ at, q: [...q] }), err => parentPort.postMessage({ error: String(err) }))
      .finally(() => {
        busy = undefined
        // the reading's wall time stands for its cost: a thread's own CPU time is not readable on Node 20
        // (process.cpuUsage counts the whole generator), and a reading is mostly the kernel's work
        if (!stopped) timer = setTimeout(tick, m.pacedDelayMs(performance.timeOrigin + performance.now() - at, intervalMs, duty))
      })
  }
  parentPort.on('message', async msg => {
    if (msg !== 'stop') return
    stopped = true
    clearTimeout(timer)
    await busy
    parentPort.postMessage({ stopped: true })
  })
  tick()
}, err => parentPort.postMessage({ error: String(err) }))
`

/**
 * Samples the accept queues of named ports every `intervalMs` (default 100; longer where a reading
 * is dear, SAMPLER_DUTY) until stopped, in a
 * worker thread (falling back to a timer on this thread if the worker cannot start). A reading
 * that takes longer than the interval makes the next one wait (never two reads at once).
 */
export class AcceptQueueSampler {
  readonly #ports: ReadonlyMap<string, number>
  readonly #intervalMs: number
  readonly #duty: number
  readonly #files: readonly string[] | undefined
  readonly #thread: boolean
  readonly #samples = new Map<string, Array<[number, number]>>()
  #timer: NodeJS.Timeout | undefined
  #worker: Worker | undefined
  #running: Promise<void> | undefined
  #stopped = false
  /** Wall-clock ms (timeOrigin + now) when sampling started. */
  #t0 = 0
  #firstReading: (() => void) | undefined
  /** Why the worker thread was not used, if it was not. */
  fallback: string | undefined

  /** `duty`: the share of a core readings may take (default SAMPLER_DUTY; 1 = never spaced out). */
  constructor(ports: Readonly<Record<string, number | undefined>>, o: { intervalMs?: number; files?: readonly string[]; thread?: boolean; duty?: number } = {}) {
    this.#ports = new Map(Object.entries(ports).filter((e): e is [string, number] => e[1] !== undefined))
    this.#intervalMs = o.intervalMs ?? 100
    this.#duty = o.duty ?? SAMPLER_DUTY
    this.#files = o.files
    this.#thread = o.thread ?? true
    for (const name of this.#ports.keys()) this.#samples.set(name, [])
  }

  get empty(): boolean { return this.#ports.size === 0 }

  /** Start sampling; resolves once the first reading is in (the worker has loaded), at most 5 s later. */
  start(): Promise<void> {
    if (this.empty || this.#timer || this.#worker) return Promise.resolve()
    this.#t0 = performance.timeOrigin + performance.now()
    const first = new Promise<void>(resolve => { this.#firstReading = resolve; setTimeout(resolve, 5000).unref() })
    if (!this.#thread) { this.#startTimer(); return first }
    try {
      const tsx = import.meta.url.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : undefined
      const worker = new Worker(WORKER_CODE, { eval: true, workerData: { module: import.meta.url, tsx, ports: [...this.#ports.values()], files: this.#files ?? null, intervalMs: this.#intervalMs, duty: this.#duty } })
      worker.unref()
      worker.on('message', (m: { at?: number; q?: Array<[number, number | undefined]>; error?: string }) => {
        if (m.error !== undefined) return this.#toTimer(m.error)
        if (m.at !== undefined && m.q) this.#record(m.at, new Map(m.q))
      })
      worker.on('error', err => this.#toTimer(String(err)))
      this.#worker = worker
    } catch (err) {
      this.#toTimer(String(err))
    }
    return first
  }

  #toTimer(why: string): void {
    this.fallback = `worker thread: ${why}; sampled on the generator's thread`
    const w = this.#worker
    this.#worker = undefined
    void w?.terminate()
    if (!this.#stopped && !this.#timer) this.#startTimer()
  }

  #startTimer(): void {
    const tick = () => {
      const t0 = performance.now()
      this.#running = this.sample().finally(() => {
        this.#running = undefined
        // the reading's wall time stands for its cost, as in the worker
        if (!this.#stopped) this.#timer = setTimeout(tick, pacedDelayMs(performance.now() - t0, this.#intervalMs, this.#duty))
      })
    }
    tick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    const w = this.#worker
    this.#worker = undefined
    if (w) {
      // the readings already posted arrive before the worker's "stopped"
      const stopped = new Promise<void>(resolve => {
        w.on('message', (m: { stopped?: boolean }) => { if (m.stopped) resolve() })
        w.once('exit', () => resolve())
        setTimeout(resolve, 2000).unref()
      })
      w.postMessage('stop')
      await stopped
      // keep the readings that came in before "stopped": the handler above stays until terminate
      await w.terminate()
    }
    await this.#running
  }

  #record(at: number, queues: ReadonlyMap<number, number | undefined>): void {
    this.#firstReading?.()
    this.#firstReading = undefined
    const t = (at - this.#t0) / 1000
    for (const [name, port] of this.#ports) {
      const q = queues.get(port)
      if (q !== undefined) this.#samples.get(name)!.push([t, q])
    }
  }

  /** One reading of every port, on this thread (also what the fallback timer does). */
  async sample(): Promise<void> {
    const at = performance.timeOrigin + performance.now()
    this.#record(at, await acceptQueues([...this.#ports.values()], this.#files))
  }

  /** Per port name: the summary, or undefined when the port was never seen listening. */
  summary(): Record<string, AcceptQueueSummary | undefined> {
    const out: Record<string, AcceptQueueSummary | undefined> = {}
    for (const [name, port] of this.#ports) {
      const xs = this.#samples.get(name)!
      if (xs.length === 0) { out[name] = undefined; continue }
      const sorted = xs.map(x => x[1]).sort((a, b) => a - b)
      const perSecond = new Map<number, number>()
      for (const [t, q] of xs) { const s = Math.floor(t); perSecond.set(s, Math.max(perSecond.get(s) ?? 0, q)) }
      out[name] = {
        port, samples: xs.length, intervalMs: xs.length > 1 ? Math.round((xs[xs.length - 1]![0] - xs[0]![0]) / (xs.length - 1) * 1000) : this.#intervalMs, max: sorted[sorted.length - 1]!, p99: percentile(sorted, 99), p90: percentile(sorted, 90),
        mean: Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length * 100) / 100,
        nonEmpty: Math.round(sorted.filter(q => q > 0).length / sorted.length * 1000) / 1000,
        perSecondMax: [...perSecond].sort((a, b) => a[0] - b[0]),
        sampledOn: this.#thread && !this.fallback ? 'worker thread' : this.fallback ?? 'generator thread',
      }
    }
    return out
  }
}
