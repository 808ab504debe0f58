/**
 * Pod hosts: the pods' containers spread over N child processes (pod-host.ts), each with its own
 * open-file limit. One process cannot hold them all: at 10,000 users kube-sim reached the machine's
 * hard limit of 20,000 open files (issue #16), which root cannot raise without CAP_SYS_RESOURCE.
 * A host that dies takes its containers with it, as a node would: pending starts fail, its pods
 * stop answering (they stay Running: kube-sim has no node controller), and a fresh host takes its slot.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { siblingEntry } from '../../core/src/supervision.js'
import type { Logger } from 'pino'
import type { FromHost, HostOptions, ToHost } from './pod-host.js'
import type { ContainerRuntime, ContainerSpec, RunningContainer } from './runtime.js'
import type { VirtualServerExtra } from './virtual-server.js'

/** Open files a pod costs its host: listening socket, the proxy's connection, a websocket, the hub connection (conservative). */
export const POD_HOST_FDS_PER_POD = 3
/** Open files a host holds besides its pods' (libraries, the IPC channel, stdio). */
export const POD_HOST_BASELINE_FDS = 100
/** `--pod-hosts auto` never forks more than this many. */
export const MAX_AUTO_POD_HOSTS = 8
/** A host that dies before it is ready is replaced after this long, not in a fork loop. */
const RESPAWN_DELAY_MS = 1000

export interface PodHostsOptions {
  /** Child processes. */
  readonly hosts: number
  /** What runs in each container. Default: 'singleuser'. */
  readonly runtime?: 'http' | 'singleuser'
  /** Passed to each virtual server, as singleUserRuntime's. Default: {}. */
  readonly extra?: Omit<VirtualServerExtra, 'signal'>
  /** The hosts' pino level. Default: the logger's. */
  readonly logLevel?: string
  /** close(): SIGKILL a host this long after SIGTERM. Default: 5000. */
  readonly killAfterMs?: number
}

/** Pods a host holds within `fdSoft` open files. */
export function podsPerHost(fdSoft: number): number {
  return Math.max(0, Math.floor((fdSoft - POD_HOST_BASELINE_FDS) / POD_HOST_FDS_PER_POD))
}

/** `--pod-hosts auto`: enough hosts for `clusterPods` under each host's limit, 1 to MAX_AUTO_POD_HOSTS. */
export function podHostsFor(clusterPods: number, fdSoft: number | undefined): number {
  if (fdSoft === undefined || !Number.isFinite(fdSoft)) return 1
  return Math.min(MAX_AUTO_POD_HOSTS, Math.max(1, Math.ceil(clusterPods / Math.max(1, podsPerHost(fdSoft)))))
}

interface Pending { resolve(): void; reject(err: Error): void }

/** One child process and what it runs. */
class Host {
  readonly slot: number
  readonly child: ChildProcess
  /** Resolves on the child's 'ready'; rejects if it dies first. */
  readonly ready: Promise<void>
  readonly #starts = new Map<number, Pending>()
  readonly #stops = new Map<number, Pending>()
  readonly #containers = new Set<number>()
  #readyNow = false
  #exited = false
  #onReady!: () => void
  #onEarlyExit!: (err: Error) => void

  readonly #onExit: (host: Host, wasReady: boolean, why: string) => void

  constructor(slot: number, options: HostOptions, onExit: (host: Host, wasReady: boolean, why: string) => void) {
    this.slot = slot
    this.#onExit = onExit
    this.ready = new Promise<void>((resolve, reject) => { this.#onReady = resolve; this.#onEarlyExit = reject })
    this.ready.catch(() => { /* start() reports it */ })
    // pod-host.js beside this file in dist/, pod-host.ts under tsx
    const entry = siblingEntry(import.meta.url, 'pod-host')
    this.child = fork(entry.file, [JSON.stringify(options)], { execArgv: entry.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m: FromHost) => this.#message(m))
    this.child.on('error', err => this.#exit(`error: ${err.message}`))
    this.child.on('exit', (code, signal) => this.#exit(signal !== null ? `signal ${signal}` : `exit code ${code}`))
  }

  get pid(): number | undefined { return this.child.pid }
  get exited(): boolean { return this.#exited }
  /** Containers running or starting: what start() balances. */
  get load(): number { return this.#containers.size + this.#starts.size }
  stats(): Record<string, unknown> {
    return { slot: this.slot, pid: this.pid, ready: this.#readyNow, containers: this.#containers.size, starting: this.#starts.size }
  }

  /** Counted in `load` at once, sent when the host is ready (a child installs its listener only then). */
  start(id: number, spec: ContainerSpec): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#exited) return reject(new Error(`pod host ${this.pid} exited`))
      this.#starts.set(id, { resolve, reject })
      this.ready.then(() => { if (this.#starts.has(id)) this.#send({ type: 'start', id, spec }) }, () => { /* #exit rejected it */ })
    })
  }

  /** Resolves when the container no longer listens, or at once when the host is gone (and it with it). */
  stop(id: number): Promise<void> {
    if (!this.#containers.has(id) || this.#exited) return Promise.resolve()
    this.#containers.delete(id)
    return new Promise<void>(resolve => {
      this.#stops.set(id, { resolve, reject: () => resolve() })
      this.#send({ type: 'stop', id })
    })
  }

  #send(m: ToHost): void {
    // a channel closing under us shows up as 'exit' next, which settles what is pending
    try { this.child.send(m, err => { if (err) this.child.kill('SIGKILL') }) } catch { this.child.kill('SIGKILL') }
  }

  #message(m: FromHost): void {
    if (m.type === 'ready') { this.#readyNow = true; this.#onReady(); return }
    const starting = this.#starts.get(m.id)
    if (m.type === 'started' && starting) { this.#starts.delete(m.id); this.#containers.add(m.id); starting.resolve() }
    else if (m.type === 'failed' && starting) { this.#starts.delete(m.id); starting.reject(Object.assign(new Error(m.message), m.code !== undefined ? { code: m.code } : {})) }
    else if (m.type === 'stopped') { const s = this.#stops.get(m.id); this.#stops.delete(m.id); s?.resolve() }
  }

  #exit(why: string): void {
    if (this.#exited) return
    this.#exited = true
    const err = new Error(`pod host ${this.pid} exited (${why})`)
    this.#onEarlyExit(err)
    for (const p of this.#starts.values()) p.reject(err)
    for (const p of this.#stops.values()) p.resolve()
    this.#starts.clear(); this.#stops.clear(); this.#containers.clear()
    this.#onExit(this, this.#readyNow, why)
  }
}

export interface PodHostsRuntime extends ContainerRuntime {
  stats(): Record<string, unknown>
  close(): Promise<void>
}

/** A ContainerRuntime whose containers run in `options.hosts` child processes (the one with the fewest takes the next). */
export function podHostsRuntime(log: Logger, options: PodHostsOptions): PodHostsRuntime {
  if (!Number.isInteger(options.hosts) || options.hosts < 1) throw new Error(`pod hosts: need at least 1 host, not ${options.hosts}`)
  const hostOptions = (slot: number): HostOptions => ({ runtime: options.runtime ?? 'singleuser', extra: options.extra ?? {}, logLevel: options.logLevel ?? log.level, slot })
  const hosts: Host[] = []
  const timers = new Set<NodeJS.Timeout>()
  let closed = false
  let nextId = 0
  let replaced = 0

  const spawn = (slot: number): void => { hosts[slot] = new Host(slot, hostOptions(slot), onExit) }
  const onExit = (host: Host, wasReady: boolean, why: string): void => {
    if (closed || hosts[host.slot] !== host) return
    log.error({ slot: host.slot, pid: host.pid, why }, 'pod host exited: its containers are gone; starting another')
    replaced++
    if (wasReady) return spawn(host.slot)
    const timer = setTimeout(() => { timers.delete(timer); if (!closed) spawn(host.slot) }, RESPAWN_DELAY_MS)
    timers.add(timer)
  }
  for (let slot = 0; slot < options.hosts; slot++) spawn(slot)

  const pick = (): Host => hosts.filter(h => !h.exited).reduce<Host | undefined>((a, h) => a === undefined || h.load < a.load ? h : a, undefined) ?? hosts[0]!
  return {
    name: `pod-hosts(${options.hosts}×${options.runtime ?? 'singleuser'})`,
    async start(spec) {
      if (closed) throw new Error('pod hosts closed')
      const host = pick()
      const id = nextId++
      await host.start(id, spec)
      let stopping: Promise<void> | undefined
      return { stop: () => (stopping ??= host.stop(id)) } satisfies RunningContainer
    },
    stats: () => ({ podHosts: hosts.map(h => h.stats()), podHostsReplaced: replaced }),
    close: async () => {
      if (closed) return
      closed = true
      for (const t of timers) clearTimeout(t)
      await Promise.all(hosts.map(h => stopHost(h, options.killAfterMs ?? 5000)))
    },
  }
}

/** SIGTERM, SIGKILL after `killAfterMs`; resolves when the process has exited. */
async function stopHost(host: Host, killAfterMs: number): Promise<void> {
  const child = host.child
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
  await exited
  clearTimeout(timer)
}
