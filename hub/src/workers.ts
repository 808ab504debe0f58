/**
 * `fleethub start|hub --workers N`: N hub processes behind one hub port, on one machine
 * (node:cluster; DESIGN.md, "The fleet").
 *
 * The primary does no hub work. It owns what the workers share (the embedded Postgres, migrated
 * once; the proxy child; the secrets a random default would make differ per process: the proxy
 * token, the development password, the OIDC state key), listens on the hub port through the
 * cluster (its event loop is idle, so a burst of new connections is accepted at once and handed
 * out round-robin: the cure for libuv accepting one connection per turn of a busy loop), starts a
 * new worker when one dies, and on SIGHUP replaces the workers one at a time with freshly loaded
 * code and config, each new one taking connections only once it is ready.
 *
 * Workers are whole hubs over the one database, coordinated through it (hub/src/fleet/): leases
 * for the singleton loops, NOTIFY for caches and progress, row claims for spawns. A worker leaves
 * user servers running when it goes (another worker adopts them: local servers run in their own
 * process groups and outlive the worker that started them); only a shutdown of the whole
 * primary stops them (when cleanup is on), through one worker, before the proxy and the database.
 *
 * Signals: Ctrl-C reaches the whole foreground process group, workers included; workers ignore
 * SIGINT/SIGTERM and act on the primary's word alone, so the order above holds. A worker whose
 * primary vanished shuts itself down.
 */
import cluster, { type Worker } from 'node:cluster'
import { freePort, RestartCount } from '../../core/src/supervision.js'
import { randomBytes } from 'node:crypto'
import type { HubConfig } from './config.js'
import type { Logger } from '../../core/src/log.js'
import type { HubStack } from './stack.js'

/** primary -> worker */
export type ToWorker = { readonly type: 'shutdown'; readonly cleanupServers: boolean; readonly drainMs?: number }
/** worker -> primary */
export type ToPrimary =
  | { readonly type: 'ready'; readonly publicUrl: string; readonly hubUrl: string; readonly hubId: string }
  | { readonly type: 'failed'; readonly message: string }

/** Environment a worker is started with: the shared secrets and where the shared parts are. */
export const WORKER_ARGS_ENV = 'FLEETHUB_WORKER_ARGS'

export interface PrimaryOptions {
  readonly config: HubConfig
  readonly log: Logger
  readonly databaseUrl: string
  /** Start the shared proxy (the primary's child) once the hub port is known; undefined with `--proxy external`. */
  readonly startProxy?: (hubUrl: string) => Promise<{ apiUrl: string; publicUrl: string; close(): Promise<void> }>
  /** Called once every first-generation worker is ready. */
  readonly onReady?: (info: { publicUrl: string; hubUrl: string; workers: number }) => void
  /** A worker that does not say ready within this long is replaced. Default: start timeout + 60 s. */
  readonly readyTimeoutMs?: number
  /** How long a replaced worker may finish its requests and spawns in flight. Default 30 s. */
  readonly drainMs?: number
}

export interface Primary {
  readonly hubUrl: string
  readonly publicUrl: string
  /** Pids of the live workers. */
  workers(): number[]
  /** Replace every worker, one at a time (what SIGHUP does). Resolves when the last is replaced. */
  rollingRestart(): Promise<void>
  /** Stop the workers (one of them stopping user servers when cleanup is on), then the proxy. */
  close(): Promise<void>
}

export async function startPrimary(o: PrimaryOptions): Promise<Primary> {
  const { config, log } = o
  const hubPort = config.hubPort === 0 ? await freePort(config.hubIp) : config.hubPort
  const hubUrl = `http://${config.hubIp}:${hubPort}`
  const proxy = await o.startProxy?.((config.hubConnectUrl ?? hubUrl).replace(/\/+$/, ''))
  const proxyApiUrl = proxy?.apiUrl ?? config.proxyApiUrl
  const env: Record<string, string> = {
    DATABASE_URL: o.databaseUrl,
    CONFIGPROXY_AUTH_TOKEN: config.proxyAuthToken,
    FLEETHUB_DEV_PASSWORD: config.devPassword,
    FLEETHUB_OIDC_STATE_SECRET: config.oidc?.stateSecret ?? randomBytes(32).toString('base64url'),
    [WORKER_ARGS_ENV]: JSON.stringify(['--proxy', 'external', '--proxy-api-url', proxyApiUrl, '--hub-port', String(hubPort), '--no-migrate', '--workers', '1', '--proxy-routes', config.proxyRoutes, '--proxies', '1']),
  }
  const readyTimeoutMs = o.readyTimeoutMs ?? (config.startTimeout + 60) * 1000
  const drainMs = o.drainMs ?? 30_000
  let closing = false
  let publicUrl = proxy?.publicUrl ?? ''
  const live = new Set<Worker>()
  const retiring = new Set<Worker>()
  const crashes = new RestartCount()

  const fork = (): Promise<Worker> => new Promise((resolve, reject) => {
    const worker = cluster.fork(env)
    live.add(worker)
    const timer = setTimeout(() => { worker.process.kill('SIGKILL'); reject(new Error(`worker ${worker.process.pid} was not ready within ${readyTimeoutMs} ms`)) }, readyTimeoutMs)
    const onMessage = (m: ToPrimary) => {
      if (m?.type === 'ready') {
        clearTimeout(timer)
        publicUrl ||= m.publicUrl
        log.info({ worker: worker.process.pid, hubId: m.hubId }, 'worker ready')
        resolve(worker)
      } else if (m?.type === 'failed') {
        clearTimeout(timer)
        reject(new Error(`worker ${worker.process.pid} could not start: ${m.message}`))
      }
    }
    worker.on('message', onMessage)
    worker.once('exit', () => { clearTimeout(timer); reject(new Error(`worker ${worker.process.pid} exited before it was ready`)) })
  })

  // A worker that dies is replaced (at most 5 in a minute: a crash loop is left to the operator).
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker)
    if (closing || retiring.delete(worker)) return
    const recent = crashes.record()
    log.warn({ worker: worker.process.pid, code, signal }, 'worker died; starting another')
    if (recent > 5) {
      log.error({ crashes: recent }, 'workers keep dying; not starting more')
      return
    }
    fork().catch(err => log.error({ err: String(err) }, 'replacement worker failed'))
  })

  const stopWorker = (worker: Worker, msg: ToWorker, timeoutMs: number): Promise<void> => new Promise(resolve => {
    if (worker.isDead()) return resolve()
    const timer = setTimeout(() => { log.warn({ worker: worker.process.pid }, 'worker did not stop in time; killing it'); worker.process.kill('SIGKILL') }, timeoutMs)
    worker.once('exit', () => { clearTimeout(timer); resolve() })
    try { worker.send(msg) } catch { worker.process.kill('SIGTERM') }
  })

  try {
    for (let i = 0; i < config.workers; i++) await fork()
  } catch (err) {
    closing = true
    await Promise.all([...live].map(w => stopWorker(w, { type: 'shutdown', cleanupServers: false }, 10_000)))
    await proxy?.close()
    throw err
  }
  o.onReady?.({ publicUrl, hubUrl, workers: live.size })

  let rolling: Promise<void> | undefined
  return {
    hubUrl,
    get publicUrl() { return publicUrl },
    workers: () => [...live].filter(w => !w.isDead()).map(w => w.process.pid!),
    rollingRestart() {
      rolling ??= (async () => {
        const old = [...live]
        log.info({ workers: old.length }, 'rolling restart')
        for (const worker of old) {
          if (closing) return
          await fork() // the new one is ready (and taking connections) before the old one goes
          retiring.add(worker)
          await stopWorker(worker, { type: 'shutdown', cleanupServers: false, drainMs }, drainMs + 30_000)
        }
        log.info('rolling restart done')
      })().finally(() => { rolling = undefined })
      return rolling
    },
    async close() {
      closing = true
      await rolling?.catch(() => undefined)
      const workers = [...live]
      // Every worker but one goes first; the last stops the user servers (when cleanup is on),
      // while the proxy and the database are still up.
      const last = workers.pop()
      await Promise.all(workers.map(w => stopWorker(w, { type: 'shutdown', cleanupServers: false, drainMs: 2000 }, 30_000)))
      if (last) await stopWorker(last, { type: 'shutdown', cleanupServers: config.cleanupServers }, 120_000)
      await proxy?.close()
    },
  }
}

/** The extra flags the primary gave this worker (empty outside a worker). */
export function workerArgs(env: NodeJS.ProcessEnv): string[] {
  const raw = env[WORKER_ARGS_ENV]
  if (!raw || !cluster.isWorker) return []
  const args = JSON.parse(raw) as unknown
  return Array.isArray(args) ? args.map(String) : []
}

/**
 * In a worker: say ready to the primary, ignore the terminal's signals, and shut down when the
 * primary says so (or vanishes). Resolves when the worker should exit.
 */
export function serveAsWorker(stack: HubStack, log: Logger): Promise<void> {
  const ignore = () => { /* the primary decides */ }
  process.on('SIGINT', ignore)
  process.on('SIGTERM', ignore)
  const ready: ToPrimary = { type: 'ready', publicUrl: stack.publicUrl, hubUrl: stack.hubUrl, hubId: stack.fleet.hubId }
  process.send?.(ready)
  return new Promise(resolve => {
    let done = false
    const shutdown = (cleanupServers: boolean, drainMs?: number) => {
      if (done) return
      done = true
      log.info({ cleanupServers, drainMs }, 'worker shutting down')
      stack.close({ cleanupServers, drainMs }).catch(err => log.error({ err: String(err) }, 'worker shutdown failed')).finally(resolve)
    }
    process.on('message', (m: ToWorker) => { if (m?.type === 'shutdown') shutdown(m.cleanupServers, m.drainMs) })
    // The primary is gone (killed): leave user servers for the next start to adopt.
    process.on('disconnect', () => shutdown(false, 0))
  })
}

/** In a worker that could not start: tell the primary why. */
export function reportWorkerFailure(message: string): void {
  const m: ToPrimary = { type: 'failed', message }
  process.send?.(m)
}
