/**
 * `--workers N`: N proxy processes behind the same public and API ports on one machine
 * (node:cluster, as the hub's workers; DESIGN.md, "The fleet"). Each worker is a whole proxy in
 * route-store mode: its own table loaded from Postgres, its own notifications, its own activity
 * flushes. The primary starts a worker again when one dies: connections on the dead one are lost
 * (clients reconnect), nothing else is.
 *
 * The workers accept from the shared listening socket themselves (SCHED_NONE), unlike the hub's
 * workers: with the primary handing out connections (round robin), a connection handed to a worker
 * in the instant it died was never answered nor closed (seen in proxy/test/workers.test.ts: one
 * in 50 hung until the client gave up). With one accept queue, a dead worker just stops taking
 * from it. The price is balance (the kernel wakes whichever worker it likes; bench-results has
 * the split).
 */
import cluster, { type Worker } from 'node:cluster'
import { freePort, RestartCount } from '../../core/src/supervision.js'
import type { Logger } from './log.js'

export interface WorkerReady { readonly type: 'ready'; readonly port: number; readonly apiPort: number; readonly bootId: string }

export interface ProxyPrimary {
  /** The ports every worker serves. */
  readonly port: number
  readonly apiPort: number
  /** Pids of the live workers. */
  workers(): number[]
  close(): Promise<void>
}

const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 10_000

export interface PrimaryOptions {
  readonly count: number
  readonly port: number
  readonly ip: string
  readonly apiPort: number
  readonly apiIp: string
  readonly log: Logger
}

export async function startProxyPrimary(o: PrimaryOptions): Promise<ProxyPrimary> {
  const { log } = o
  let closing = false
  const live = new Set<Worker>()
  const crashes = new RestartCount()
  // Port 0 is chosen here, once: every worker (and every replacement) must ask the primary for
  // the same address and port to share its listening socket.
  const port = o.port === 0 ? await freePort(o.ip) : o.port
  const apiPort = o.apiPort === 0 ? await freePort(o.apiIp) : o.apiPort
  cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({ args: [...withPorts(process.argv.slice(2), port, apiPort), '--workers', '1'] })

  const fork = (): Promise<WorkerReady> => new Promise((resolve, reject) => {
    const worker = cluster.fork({ FLEETHUB_PROXY_WORKER: '1' })
    live.add(worker)
    const timer = setTimeout(() => { worker.process.kill('SIGKILL'); reject(new Error(`proxy worker ${worker.process.pid} was not ready within ${READY_TIMEOUT_MS} ms`)) }, READY_TIMEOUT_MS)
    worker.on('message', (m: WorkerReady) => {
      if (m?.type !== 'ready') return
      clearTimeout(timer)
      log.info({ worker: worker.process.pid, port: m.port }, 'proxy worker ready')
      resolve(m)
    })
    worker.once('exit', code => { clearTimeout(timer); reject(new Error(`proxy worker ${worker.process.pid} exited (code ${code}) before it was ready`)) })
  })

  let started = false
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker)
    // during the first start a failure fails the start (below); afterwards a dead worker is replaced
    if (closing || !started) return
    const recent = crashes.record()
    log.warn({ worker: worker.process.pid, code, signal }, 'proxy worker died; starting another')
    if (recent > 5) {
      log.error({ crashes: recent }, 'proxy workers keep dying; not starting more')
      return
    }
    fork().catch(err => log.error({ err: String(err) }, 'replacement proxy worker failed'))
  })

  const stopAll = async () => {
    closing = true
    await Promise.all([...live].map(w => new Promise<void>(resolve => {
      if (w.isDead()) return resolve()
      const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_TIMEOUT_MS)
      w.once('exit', () => { clearTimeout(timer); resolve() })
      w.process.kill('SIGTERM')
    })))
  }
  try {
    await Promise.all(Array.from({ length: o.count }, () => fork()))
    started = true
  } catch (err) {
    await stopAll()
    throw err
  }
  return {
    port,
    apiPort,
    workers: () => [...live].filter(w => !w.isDead()).map(w => w.process.pid!),
    close: stopAll,
  }
}

/** In a worker: tell the primary the ports it serves. */
export function reportWorkerReady(ready: Omit<WorkerReady, 'type'>): void {
  process.send?.({ type: 'ready', ...ready } satisfies WorkerReady)
}

export function isProxyWorker(): boolean {
  return cluster.isWorker && process.env.FLEETHUB_PROXY_WORKER === '1'
}

/** argv with --port/--api-port set to the given ports and without --workers (replacing any given). */
function withPorts(argv: readonly string[], port: number, apiPort: number): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--port' || a === '--api-port' || a === '--workers') { i++; continue }
    if (a.startsWith('--port=') || a.startsWith('--api-port=') || a.startsWith('--workers=')) continue
    out.push(a)
  }
  return [...out, '--port', String(port), '--api-port', String(apiPort)]
}
