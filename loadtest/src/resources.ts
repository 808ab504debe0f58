/**
 * Resource sampling from outside, once a second: CPU % (of one core), RSS and open file
 * descriptors of each watched process from /proc (optionally summed over its descendants, e.g.
 * Postgres and its backends, or the user servers under the hub), the generator's own event-loop
 * lag, and Postgres connections in use. Linux only; a process that has exited reads as absent.
 */
import fs from 'node:fs/promises'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { readFdLimit } from './fd-limits.js'

/** A process to watch. `tree`: include every descendant; `exclude`: pids (and their trees) left out. */
export interface WatchedProcess {
  readonly name: string
  readonly pid: () => number | undefined
  readonly tree?: boolean
  readonly exclude?: () => Array<number | undefined>
  /** With `tree`: count the descendants only, not the root itself. */
  readonly descendantsOnly?: boolean
}

export interface ProcessSample {
  readonly cpu: number
  readonly rssMb: number
  readonly fds: number
  /** The root process's open-file soft limit (/proc/<pid>/limits), or null when unread. */
  readonly fdLimit?: number | null
  readonly procs: number
}

export interface ResourcePoint {
  /** Seconds since the sampler started. */
  readonly t: number
  readonly procs: Readonly<Record<string, ProcessSample | null>>
  /** The generator's event-loop delay p99 over the last second, ms. */
  readonly loopLagP99: number
  /** Postgres backends (`pg_stat_activity`), when a query function was given. */
  readonly pgConnections: number | null
}

const TICKS = 100 // USER_HZ on Linux
const PAGE_KB = 4

interface Stat { ppid: number; ticks: number; rssPages: number }

async function readStat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8')
    // comm may hold spaces and parentheses: the fields start after the last ')'
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) }
  } catch { return undefined }
}

async function countFds(pid: number): Promise<number> {
  try { return (await fs.readdir(`/proc/${pid}/fd`)).length } catch { return 0 }
}

/** Every live pid with its parent, read once per sample. */
async function processTable(): Promise<Map<number, number[]>> {
  const children = new Map<number, number[]>()
  const pids = (await fs.readdir('/proc')).filter(d => /^\d+$/.test(d)).map(Number)
  await Promise.all(pids.map(async pid => {
    const s = await readStat(pid)
    if (!s) return
    const list = children.get(s.ppid) ?? []
    list.push(pid)
    children.set(s.ppid, list)
  }))
  return children
}

function descendants(root: number, children: Map<number, number[]>, exclude: Set<number>): number[] {
  const out: number[] = []
  const stack = [root]
  for (let guard = 0; stack.length > 0 && guard < 100_000; guard++) {
    const pid = stack.pop()!
    if (exclude.has(pid)) continue
    out.push(pid)
    stack.push(...(children.get(pid) ?? []))
  }
  return out
}

export interface ResourceSamplerOptions {
  readonly processes: readonly WatchedProcess[]
  readonly pgConnections?: () => Promise<number>
  readonly intervalMs?: number
  readonly onSample?: (p: ResourcePoint) => void
  /** performance.now() that `t` counts from (default: construction), so several samplers share one timeline. */
  readonly t0?: number
}

export class ResourceSampler {
  readonly points: ResourcePoint[] = []
  readonly #o: ResourceSamplerOptions
  readonly #lastTicks = new Map<string, { ticks: number; at: number; pids: Set<number> }>()
  readonly #t0: number
  #timer: NodeJS.Timeout | undefined
  #lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 })
  #busy = false

  constructor(o: ResourceSamplerOptions) { this.#o = o; this.#t0 = o.t0 ?? performance.now() }

  start(): void {
    this.#lag.enable()
    void this.sample()
    this.#timer = setInterval(() => { void this.sample() }, this.#o.intervalMs ?? 1000)
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    this.#lag.disable()
  }

  /** Take one sample (skipped when the previous one is still reading /proc). */
  async sample(): Promise<ResourcePoint | undefined> {
    if (this.#busy) return undefined
    this.#busy = true
    try {
      const needTable = this.#o.processes.some(p => p.tree)
      const table = needTable ? await processTable() : new Map<number, number[]>()
      const procs: Record<string, ProcessSample | null> = {}
      for (const p of this.#o.processes) procs[p.name] = await this.#sampleOne(p, table)
      const lag = this.#lag.count > 0 ? this.#lag.percentile(99) / 1e6 : 0
      this.#lag.reset()
      const pgConnections = this.#o.pgConnections ? await this.#o.pgConnections().catch(() => null) : null
      const point: ResourcePoint = { t: Math.round((performance.now() - this.#t0) / 100) / 10, procs, loopLagP99: Math.round(lag * 10) / 10, pgConnections }
      this.points.push(point)
      this.#o.onSample?.(point)
      return point
    } finally {
      this.#busy = false
    }
  }

  async #sampleOne(p: WatchedProcess, table: Map<number, number[]>): Promise<ProcessSample | null> {
    const root = p.pid()
    if (root === undefined) return null
    const exclude = new Set((p.exclude?.() ?? []).filter((x): x is number => x !== undefined))
    let pids = p.tree ? descendants(root, table, exclude) : [root]
    if (p.descendantsOnly) pids = pids.filter(pid => pid !== root)
    let ticks = 0, rss = 0, fds = 0, alive = 0
    for (const pid of pids) {
      const s = await readStat(pid)
      if (!s) continue
      alive++
      ticks += s.ticks
      rss += s.rssPages
      fds += await countFds(pid)
    }
    if (alive === 0) return p.descendantsOnly ? { cpu: 0, rssMb: 0, fds: 0, procs: 0 } : null
    const now = performance.now()
    const last = this.#lastTicks.get(p.name)
    this.#lastTicks.set(p.name, { ticks, at: now, pids: new Set(pids) })
    // CPU over the last interval; processes that exited in between make the delta negative: clamp.
    const cpu = last ? Math.max(0, ((ticks - last.ticks) / TICKS) / ((now - last.at) / 1000) * 100) : 0
    const limit = readFdLimit(root)?.soft
    return { cpu: Math.round(cpu * 10) / 10, rssMb: Math.round(rss * PAGE_KB / 1024 * 10) / 10, fds, fdLimit: limit === undefined || !Number.isFinite(limit) ? null : limit, procs: alive }
  }
}
