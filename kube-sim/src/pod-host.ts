/**
 * A pod host: a child process of kube-sim that runs pods' containers (pod-hosts.ts forks it), so
 * their sockets count against its own open-file limit rather than kube-sim's. It runs the same
 * in-process runtime kube-sim would (runtime.ts) and answers the parent over the IPC channel.
 * argv[2]: the HostOptions as JSON. It exits when the channel closes, so it never outlives kube-sim.
 */
import pino from 'pino'
import { raiseFdLimit } from './fd-limit.js'
import { httpRuntime, singleUserRuntime } from './runtime.js'
import type { ContainerRuntime, ContainerSpec, RunningContainer } from './runtime.js'
import type { VirtualServerExtra } from './virtual-server.js'

/** What the parent passes a host (JSON on argv). */
export interface HostOptions {
  readonly runtime: 'http' | 'singleuser'
  readonly extra: Omit<VirtualServerExtra, 'signal'>
  readonly logLevel: string
  /** The host's slot number, for its logs. */
  readonly slot: number
}

export type ToHost = { type: 'start'; id: number; spec: ContainerSpec } | { type: 'stop'; id: number }
export type FromHost =
  | { type: 'ready'; pid: number; fdSoft?: number }
  | { type: 'started'; id: number }
  | { type: 'failed'; id: number; message: string; code?: string }
  | { type: 'stopped'; id: number }

function runHost(options: HostOptions): void {
  const log = pino({ level: options.logLevel, base: { component: 'kube-sim', podHost: options.slot, pid: process.pid } })
  const fds = raiseFdLimit()
  const runtime: ContainerRuntime = options.runtime === 'http' ? httpRuntime : singleUserRuntime(log, options.extra)
  const containers = new Map<number, RunningContainer>()
  const send = (m: FromHost): void => { if (process.connected) process.send!(m) }
  process.on('message', (m: ToHost) => {
    if (m.type === 'start') {
      runtime.start(m.spec).then(
        c => { containers.set(m.id, c); send({ type: 'started', id: m.id }) },
        (err: NodeJS.ErrnoException) => send({ type: 'failed', id: m.id, message: err.message, ...(err.code !== undefined ? { code: err.code } : {}) }))
    } else if (m.type === 'stop') {
      const c = containers.get(m.id)
      containers.delete(m.id)
      void (c?.stop() ?? Promise.resolve()).catch(err => log.warn({ err }, 'container stop failed')).then(() => send({ type: 'stopped', id: m.id }))
    }
  })
  // kube-sim exited or closed the channel: its pods are gone with it
  process.on('disconnect', () => process.exit(0))
  // Ctrl-C in a terminal signals the whole process group: the pods go when kube-sim does (above),
  // after it has stopped them in order, not before
  process.on('SIGINT', () => undefined)
  send({ type: 'ready', pid: process.pid, ...(fds ? { fdSoft: fds.soft } : {}) })
}

if (process.send !== undefined) runHost(JSON.parse(process.argv[2] ?? '{}') as HostOptions)
