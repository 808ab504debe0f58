/**
 * The `local` spawner: each user server is a child process on a free loopback port, in its own
 * process group (so stop reaches everything it started), with the contract §3 environment.
 * State (`pid`, kernel start time, port) is enough for a restarted hub to adopt or stop a server;
 * the saved start time guards every signal against a recycled pid.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, openSync, closeSync, writeSync } from 'node:fs'
import { mkdir, open, readFile } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { SpawnerError, type PollResult, type SpawnerState, type Spawner, type SpawnSpec, type StartOptions, type StartResult } from './spawner.js'

export interface LocalProcessSpawnerConfig {
  /** The server command; default `defaultSingleUserCommand(hubEnv.PATH)`. */
  readonly cmd?: readonly string[]
  /** Extra arguments after `cmd`; default none. */
  readonly args?: readonly string[]
  /** How long a server may take from spawn to listening; default 60 000 ms. */
  readonly startTimeoutMs?: number
  /** Extra environment applied last (JupyterHub's `Spawner.environment`); default {}. */
  readonly env?: Readonly<Record<string, string>>
  /** Folder with one home folder per user (created); default `.fleethub/users` under the hub's cwd. */
  readonly usersDir?: string
  /** Folder for each server's stdout+stderr log (`<user>[@<server>].log`); default `.fleethub/logs/servers`. */
  readonly logDir?: string
  /** Address the servers bind to; default 127.0.0.1. */
  readonly host?: string
  /** Inclusive port range to pick from; default [20000, 32767], below Linux's ephemeral range. */
  readonly portRange?: readonly [number, number]
  /** Stop waits this long after SIGINT before SIGTERM; default 10 000 ms (LocalProcessSpawner.interrupt_timeout). */
  readonly interruptTimeoutMs?: number
  /** ... after SIGTERM before SIGKILL; default 5000 ms. */
  readonly termTimeoutMs?: number
  /** ... after SIGKILL before giving up; default 5000 ms. */
  readonly killTimeoutMs?: number
}

export interface LocalProcessSpawnerDeps {
  readonly log: Logger
  /** The hub's environment: PATH, LANG, ... are passed on from it (contract §3 env_keep). */
  readonly hubEnv: Readonly<Record<string, string | undefined>>
}

/** Variables copied from the hub's environment (JupyterHub's `Spawner.env_keep`). */
const ENV_KEEP = ['PATH', 'PYTHONPATH', 'CONDA_ROOT', 'CONDA_DEFAULT_ENV', 'VIRTUAL_ENV', 'LANG', 'LC_ALL', 'JUPYTERHUB_SINGLEUSER_APP'] as const
const EXIT_ADDRESS_IN_USE = 98 // `fleethub singleuser` exits with this on EADDRINUSE
const PORT_ATTEMPTS = 3

/** Where the built-in server's CLI is: next to us in dist/, or dist/ of the repo when run from source. */
export function builtInServerScript(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  const sibling = resolve(here, '../../cli/fleethub.js')
  return existsSync(sibling) ? sibling : resolve(here, '../../dist/cli/fleethub.js')
}

/**
 * The default server command: `jupyterhub-singleuser` (with `--allow-root` when we are root) if it
 * is on `path`, else the built-in `node dist/cli/fleethub.js singleuser`.
 */
export function defaultSingleUserCommand(path: string | undefined): string[] {
  if (findExecutable('jupyterhub-singleuser', path)) {
    return process.getuid?.() === 0 ? ['jupyterhub-singleuser', '--allow-root'] : ['jupyterhub-singleuser']
  }
  return [process.execPath, builtInServerScript(), 'singleuser']
}

function findExecutable(name: string, path: string | undefined): string | undefined {
  const candidates = name.includes('/') ? [name] : (path ?? '').split(delimiter).filter(Boolean).map(dir => join(dir, name))
  return candidates.find(file => { try { accessSync(file, constants.X_OK); return true } catch { return false } })
}

/** A path segment that cannot escape its folder (`..`, `/`) and cannot collide with our `@` separator. */
function safeSegment(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, c => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

interface ProcInfo { readonly state: string, readonly pgrp: number, readonly startTime: number }

/** `/proc/<pid>/stat`: process state, group and start time (clock ticks since boot); undefined if gone. */
async function readProc(pid: number): Promise<ProcInfo | undefined> {
  let text
  try { text = await readFile(`/proc/${pid}/stat`, 'utf8') } catch { return undefined }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { state: fields[0], pgrp: Number(fields[2]), startTime: Number(fields[19]) }
}

interface LocalState { readonly pid: number, readonly startTime: number, readonly port: number, readonly host: string }

function parseState(state: SpawnerState): LocalState | undefined {
  const { pid, startTime, port, host } = state
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1) return undefined
  if (typeof startTime !== 'number' || typeof port !== 'number' || typeof host !== 'string') return undefined
  return { pid, startTime, port, host }
}

/** Still the very process we started (not exited, not a zombie, not a recycled pid)? */
async function isOurs(s: LocalState): Promise<ProcInfo | undefined> {
  const info = await readProc(s.pid)
  return info && info.state !== 'Z' && info.state !== 'X' && info.startTime === s.startTime ? info : undefined
}

/** Signal the process group when the pid leads one we started, else just the pid. */
function signal(s: LocalState, info: ProcInfo, sig: NodeJS.Signals): void {
  try { process.kill(info.pgrp === s.pid ? -s.pid : s.pid, sig) } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

async function waitGone(s: LocalState, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < 10_000; i++) {
    if (!(await isOurs(s))) return true
    if (Date.now() >= deadline) return false
    await sleep(Math.min(50, Math.max(1, deadline - Date.now())))
  }
  return false
}

function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise(done => {
    const socket = createConnection({ host, port })
    const finish = (ok: boolean): void => { socket.destroy(); clearTimeout(timer); done(ok) }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.once('connect', () => finish(true))
    socket.once('error', () => finish(false))
  })
}

function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise(done => {
    const probe = createServer()
    probe.once('error', () => done(false))
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done(true)))
  })
}

/** The last `maxLines` lines of a log file (at most 4 KiB read), for error messages. */
async function tailOf(file: string, maxLines = 15): Promise<string> {
  try {
    const handle = await open(file, 'r')
    try {
      const { size } = await handle.stat()
      const length = Math.min(size, 4096)
      const buf = Buffer.alloc(length)
      await handle.read(buf, 0, length, size - length)
      return buf.toString('utf8').trimEnd().split('\n').slice(-maxLines).join('\n')
    } finally { await handle.close() }
  } catch { return '' }
}

export function createLocalProcessSpawner(config: LocalProcessSpawnerConfig, deps: LocalProcessSpawnerDeps): Spawner {
  return new LocalProcessSpawner(config, deps)
}

class LocalProcessSpawner implements Spawner {
  readonly kind = 'local'
  readonly #cmd: readonly string[]
  readonly #c: LocalProcessSpawnerConfig
  readonly #log: Logger
  readonly #hubEnv: LocalProcessSpawnerDeps['hubEnv']
  readonly #host: string
  readonly #usersDir: string
  readonly #logDir: string
  /** Children we started, by pid: their exit codes for `poll`, and ports not to hand out twice. */
  readonly #children = new Map<number, ChildProcess>()
  readonly #reserved = new Set<number>()
  #closed = false

  constructor(config: LocalProcessSpawnerConfig, deps: LocalProcessSpawnerDeps) {
    this.#c = config
    this.#log = deps.log.child({ spawner: 'local' })
    this.#hubEnv = deps.hubEnv
    this.#cmd = config.cmd && config.cmd.length > 0 ? config.cmd : defaultSingleUserCommand(deps.hubEnv.PATH)
    this.#host = config.host ?? '127.0.0.1'
    this.#usersDir = resolve(config.usersDir ?? '.fleethub/users')
    this.#logDir = resolve(config.logDir ?? '.fleethub/logs/servers')
  }

  async start(spec: SpawnSpec, options: StartOptions): Promise<StartResult> {
    if (this.#closed) throw new SpawnerError('SPAWNER_CLOSED', 'The spawner is shutting down')
    if (options.signal.aborted) throw new SpawnerError('SPAWNER_ABORTED', 'The server start was cancelled')
    options.progress({ progress: 50, message: 'Spawning server...' })
    const home = join(this.#usersDir, safeSegment(spec.user))
    const logFile = join(this.#logDir, `${safeSegment(spec.user)}${spec.serverName ? `@${safeSegment(spec.serverName)}` : ''}.log`)
    await mkdir(home, { recursive: true, mode: 0o700 })
    await mkdir(this.#logDir, { recursive: true, mode: 0o700 })
    for (let attempt = 1; ; attempt++) {
      const port = await this.#pickPort()
      try {
        return await this.#launch(spec, options, { home, logFile, port })
      } catch (err) {
        this.#reserved.delete(port) // nothing of ours runs on it any more
        if (!(err instanceof SpawnerError && err.code === 'SPAWNER_PORT_IN_USE') || attempt >= PORT_ATTEMPTS) throw err
        this.#log.warn({ user: spec.user, port, attempt }, 'port taken before the server bound it, retrying')
      }
    }
  }

  /** A random free port in the range, not one of ours in flight. */
  async #pickPort(): Promise<number> {
    const [lo, hi] = this.#c.portRange ?? [20000, 32767]
    for (let i = 0; i < 50; i++) {
      const port = lo + Math.floor(Math.random() * (hi - lo + 1))
      if (this.#reserved.has(port)) continue
      this.#reserved.add(port)
      if (await isPortFree(this.#host, port)) return port
      this.#reserved.delete(port)
    }
    throw new SpawnerError('SPAWNER_NO_PORT', `No free port found between ${lo} and ${hi}`)
  }

  #environment(spec: SpawnSpec, home: string, port: number): Record<string, string> {
    const env: Record<string, string> = {}
    for (const key of ENV_KEEP) { const v = this.#hubEnv[key]; if (v !== undefined) env[key] = v }
    Object.assign(env, spec.env)
    env.JUPYTERHUB_SERVICE_URL = `http://${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${port}${spec.prefix}`
    env.USER = spec.user
    env.HOME = home
    env.SHELL = this.#hubEnv.SHELL || '/bin/bash'
    return Object.assign(env, this.#c.env)
  }

  /** One attempt: spawn on `port`, wait until it listens, exits, times out, or the start is aborted. */
  async #launch(spec: SpawnSpec, options: StartOptions, where: { home: string, logFile: string, port: number }): Promise<StartResult> {
    const { home, logFile, port } = where
    const argv = [...this.#cmd, ...(this.#c.args ?? [])]
    const fd = openSync(logFile, 'a', 0o600)
    let child: ChildProcess
    try {
      writeSync(fd, `--- ${new Date().toISOString()} fleethub: starting ${JSON.stringify(argv)} on port ${port}\n`)
      child = spawn(argv[0], argv.slice(1), { cwd: home, env: this.#environment(spec, home, port), detached: true, stdio: ['ignore', fd, fd] })
    } finally { closeSync(fd) }
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, error?: NodeJS.ErrnoException }>(done => {
      child.once('error', error => done({ code: null, signal: null, error }))
      child.once('exit', (code, sig) => done({ code, signal: sig }))
    })
    if (child.pid === undefined) return this.#spawnFailed(argv[0], await exited)
    const pid = child.pid
    child.unref() // a hub may exit and leave servers running for the next one to adopt
    const info = await readProc(pid)
    const state: LocalState & SpawnerState = { pid, startTime: info?.startTime ?? -1, port, host: this.#host, logFile }
    this.#children.set(pid, child)
    child.once('exit', () => { this.#reserved.delete(port) })
    options.saveState?.(state)
    options.progress({ progress: 60, message: `Server process started, pid ${pid}` })
    this.#log.info({ user: spec.user, server: spec.serverName, pid, port }, 'server process started')
    const outcome = await this.#waitListening(state, exited, options.signal)
    if (outcome === 'listening') {
      options.progress({ progress: 70, message: `Server listening on port ${port}` })
      return { url: `http://${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${port}`, state }
    }
    await this.#kill(state, child, exited)
    this.#children.delete(pid)
    if (outcome === 'aborted') throw new SpawnerError('SPAWNER_ABORTED', 'The server start was cancelled')
    if (outcome === 'timeout') {
      throw new SpawnerError('SPAWNER_START_TIMEOUT', `The server did not start listening within ${Math.round(this.#startTimeoutMs / 100) / 10} s`)
    }
    const tail = await tailOf(logFile)
    const { code, signal: sig } = outcome
    if (code === EXIT_ADDRESS_IN_USE || /EADDRINUSE|address already in use/i.test(tail)) {
      throw new SpawnerError('SPAWNER_PORT_IN_USE', `Port ${port} was taken before the server could bind it`)
    }
    const how = code !== null ? `with code ${code}` : `on signal ${sig}`
    throw new SpawnerError('SPAWNER_EXITED', `The server exited at once ${how}.${tail ? `\nLast lines of its log:\n${tail}` : ''}`)
  }

  get #startTimeoutMs(): number { return this.#c.startTimeoutMs ?? 60_000 }

  #spawnFailed(cmd: string, how: { error?: NodeJS.ErrnoException }): never {
    if (how.error?.code === 'ENOENT') {
      throw new SpawnerError('SPAWNER_COMMAND_NOT_FOUND', `The server command "${cmd}" was not found`, { cause: how.error })
    }
    throw new SpawnerError('SPAWNER_SPAWN_FAILED', `The server command "${cmd}" could not be run (${how.error?.code ?? 'unknown error'})`, { cause: how.error })
  }

  async #waitListening(s: LocalState, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, abort: AbortSignal):
    Promise<'listening' | 'timeout' | 'aborted' | { code: number | null, signal: NodeJS.Signals | null }> {
    let exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
    void exited.then(e => { exit = e })
    const aborted = new Promise<void>(r => abort.addEventListener('abort', () => r(), { once: true }))
    const deadline = Date.now() + this.#startTimeoutMs
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      if (exit) return exit
      if (abort.aborted) return 'aborted'
      if (Date.now() >= deadline) return 'timeout'
      // Connecting proves someone listens; the child being alive afterwards makes it ours.
      if (await canConnect(s.host, s.port, 1000)) {
        await sleep(0)
        if (exit) return exit
        return 'listening'
      }
      await Promise.race([sleep(Math.min(delay, Math.max(0, deadline - Date.now()))), exited, aborted])
    }
  }

  /** Failed start: SIGKILL the whole group and wait for the exit, so nothing is left running. */
  async #kill(s: LocalState, child: ChildProcess, exited: Promise<unknown>): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(-s.pid, 'SIGKILL') } catch { try { child.kill('SIGKILL') } catch { /* gone */ } }
      await Promise.race([exited, sleep(this.#c.killTimeoutMs ?? 5000)])
    } else {
      try { process.kill(-s.pid, 'SIGKILL') } catch { /* the group is gone too */ }
    }
  }

  async stop(state: SpawnerState, spec: Pick<SpawnSpec, 'user' | 'serverName'>): Promise<void> {
    const s = parseState(state)
    if (!s) return
    const steps: Array<[NodeJS.Signals, number]> = [
      ['SIGINT', this.#c.interruptTimeoutMs ?? 10_000], ['SIGTERM', this.#c.termTimeoutMs ?? 5000], ['SIGKILL', this.#c.killTimeoutMs ?? 5000],
    ]
    for (const [sig, timeoutMs] of steps) {
      const info = await isOurs(s)
      if (!info) break
      this.#log.info({ user: spec.user, server: spec.serverName, pid: s.pid, signal: sig }, 'stopping server')
      signal(s, info, sig)
      if (await waitGone(s, timeoutMs)) break
      if (sig === 'SIGKILL') throw new SpawnerError('SPAWNER_STOP_FAILED', `The server process ${s.pid} did not exit after SIGKILL`)
    }
    this.#children.delete(s.pid)
    this.#reserved.delete(s.port)
  }

  async poll(state: SpawnerState): Promise<PollResult> {
    const s = parseState(state)
    if (!s) return { running: false, reason: 'no process recorded' }
    if (await isOurs(s)) return { running: true }
    const child = this.#children.get(s.pid)
    this.#children.delete(s.pid) // reported once; a long-lived hub must not collect dead children
    return { running: false, reason: 'process gone', exitCode: child?.exitCode ?? null }
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}
