/**
 * The proxy as the hub's child process (JupyterHub's ConfigurableHTTPProxy with should_start):
 * started with CHP's flags and a random token, watched, and restarted when it dies; the hub then
 * restores the whole routing table in one call. Unlike JupyterHub (which notices a dead proxy at
 * its next 5-second poll), the exit event tells us at once.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { guardedCommand } from '../../../core/src/guarded-command.js'
import type { Logger } from '../../../core/src/log.js'
import { RestartCount } from '../../../core/src/supervision.js'

export interface ProxyProcessOptions {
  readonly ip: string
  readonly port: number
  readonly apiIp: string
  readonly apiPort: number
  readonly errorTarget: string
  readonly authToken: string
  readonly logLevel: string
  readonly log: Logger
  /** Extra CHP flags (e.g. `--timeout`). */
  readonly extraArgs?: readonly string[]
  /** Extra environment (DATABASE_URL in route-store mode). */
  readonly env?: Readonly<Record<string, string>>
}

/** The hub config's part that shapes its child proxy. */
export interface ChildProxyConfig {
  readonly ip: string
  readonly port: number
  readonly proxyApiUrl: string
  readonly proxyAuthToken: string
  readonly logLevel: string
  readonly proxyRoutes: 'api' | 'db'
  readonly proxies: number
}

/**
 * The child proxy of `fleethub start` (or its primary): CHP mode, or with `proxyRoutes: db` in
 * route-store mode with `proxies` workers, the hub as its default target (the `/` route) and the
 * hub's database.
 */
export function childProxyOptions(config: ChildProxyConfig, o: { hubUrl: string; databaseUrl: string; log: Logger }): ProxyProcessOptions {
  const api = new URL(config.proxyApiUrl)
  const store = config.proxyRoutes === 'db'
  return {
    ip: config.ip, port: config.port, apiIp: api.hostname, apiPort: Number(api.port || 8001), errorTarget: `${o.hubUrl}/hub/error`,
    authToken: config.proxyAuthToken, logLevel: config.logLevel === 'silent' ? 'error' : config.logLevel, log: o.log,
    extraArgs: store ? ['--routes-from-db', '--default-target', o.hubUrl, '--workers', String(config.proxies)] : [],
    env: store ? { DATABASE_URL: o.databaseUrl } : undefined,
  }
}

export interface ProxyEndpoints { readonly port: number; readonly apiPort: number; readonly pid: number; readonly bootId: string }

/** dist/proxy/src/main.js, whether we run from dist/ or from source under the test loader. */
export function proxyEntry(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const sibling = path.resolve(here, '../../../proxy/src/main.js')
  return existsSync(sibling) ? sibling : path.resolve(here, '../../../dist/proxy/src/main.js')
}

const READY_TIMEOUT_MS = 15_000

export class ProxyProcess {
  readonly #o: ProxyProcessOptions
  #child: ChildProcess | undefined
  #endpoints: ProxyEndpoints | undefined
  #closing = false
  readonly #restarts = new RestartCount()
  readonly #listeners: Array<(e: ProxyEndpoints) => void> = []

  constructor(options: ProxyProcessOptions) {
    this.#o = options
  }

  get endpoints(): ProxyEndpoints | undefined { return this.#endpoints }
  get pid(): number | undefined { return this.#child?.pid }

  /** Called after the proxy died and was started again (its table is empty). */
  onRestart(listener: (e: ProxyEndpoints) => void): void {
    this.#listeners.push(listener)
  }

  async start(): Promise<ProxyEndpoints> {
    // After the first start, reuse the ports actually bound so the public URL never changes.
    const port = this.#endpoints?.port ?? this.#o.port
    const apiPort = this.#endpoints?.apiPort ?? this.#o.apiPort
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-proxy-'))
    const readyFile = path.join(dir, 'ready.json')
    const args = [proxyEntry(), '--ip', this.#o.ip, '--port', String(port), '--api-ip', this.#o.apiIp, '--api-port', String(apiPort),
      '--error-target', this.#o.errorTarget, '--log-level', this.#o.logLevel, '--ready-file', readyFile, ...(this.#o.extraArgs ?? [])]
    // its own process group: a terminal's Ctrl-C reaches only the hub, which stops it in order (guarded-command.ts)
    const cmd = await guardedCommand(process.execPath, args, 'SIGTERM')
    const child = spawn(cmd.file, cmd.args, { env: { ...process.env, ...this.#o.env, CONFIGPROXY_AUTH_TOKEN: this.#o.authToken }, stdio: ['ignore', 'inherit', 'inherit'], detached: cmd.detached })
    this.#child = child
    try {
      const endpoints = await this.#waitReady(child, readyFile)
      this.#endpoints = endpoints
      child.once('exit', (code, signal) => this.#exited(child, code, signal))
      this.#o.log.info({ pid: endpoints.pid, port: endpoints.port, apiPort: endpoints.apiPort }, 'proxy started')
      return endpoints
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  }

  async #waitReady(child: ChildProcess, readyFile: string): Promise<ProxyEndpoints> {
    const deadline = Date.now() + READY_TIMEOUT_MS
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the proxy exited during start (code ${child.exitCode ?? child.signalCode}); is port ${this.#o.port} or ${this.#o.apiPort} in use?`)
      try {
        return JSON.parse(await fs.readFile(readyFile, 'utf8')) as ProxyEndpoints
      } catch { await new Promise(r => setTimeout(r, 25)) }
    }
    child.kill('SIGKILL')
    throw new Error('the proxy did not start within 15 seconds')
  }

  #exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#closing || this.#child !== child) return
    this.#o.log.error({ code, signal }, 'proxy exited; restarting it')
    const delay = Math.min(5000, 100 * 2 ** (this.#restarts.record() - 1))
    setTimeout(() => {
      if (this.#closing) return
      this.start().then(
        e => { for (const l of this.#listeners) l(e) },
        err => { this.#o.log.error({ err: String(err) }, 'proxy restart failed'); this.#exited(child, null, null) },
      )
    }, delay).unref()
  }

  async close(): Promise<void> {
    this.#closing = true
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise(r => child.once('exit', r))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }
}
