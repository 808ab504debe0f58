/**
 * A simulated student, driven over real HTTP and a real websocket the way a browser drives the hub
 * (shared/LOADTEST.md "Who the simulated users are"): log in with the form (and its `_xsrf` when it
 * has one), ask for a server (429 + Retry-After honoured), follow the progress stream, open
 * `/user/<name>/` through the proxy completing the OAuth dance, hold a kernel-like websocket with timed echoes and an HTTP
 * request now and then, then leave tidily, abandon, or go silent with the websocket open.
 * Every phase is timed into the Recorder; every outcome is counted.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { CookieJar } from './cookie-jar.js'
import type { RecorderSink } from './histogram.js'

export type LeaveMode = 'tidy' | 'abandon' | 'silent-ws'
export type UserState = 'waiting' | 'login' | 'spawning' | 'opening' | 'working' | 'leaving' | 'silent' | 'done' | 'failed'

export interface SimulatedUserOptions {
  /** The hub's public URL (through the proxy), e.g. http://127.0.0.1:8000 */
  readonly base: string
  readonly name: string
  readonly password: string
  readonly leave: LeaveMode
  /** performance.now() at which the user stops working and leaves. */
  readonly workUntil: number
  /** Mean time between websocket messages (ms; each wait is uniform in [0.5x, 1.5x]). Default 3000. */
  readonly messageIntervalMs?: number
  /** Mean time between HTTP requests to the server while working (ms). Default 10000. */
  readonly httpIntervalMs?: number
  /** Bytes of padding per websocket message. Default 100. */
  readonly messageBytes?: number
  /** Give up on a spawn (429 waits included) after this long. Default 120000. */
  readonly spawnTimeoutMs?: number
  readonly recorder: RecorderSink
  readonly onState?: (from: UserState, to: UserState) => void
  /**
   * Websocket drops are expected (the restart scenario kills the proxy): count them as
   * `ws_closed_by_outage`, not as the `error:ws_dropped` SLO failure. Default false.
   */
  readonly expectDrops?: boolean
}

/** The counters a user keeps itself, independent of the recorder (tests compare the two). */
export interface UserTally {
  loggedIn: boolean
  spawned: boolean
  stopped: boolean
  echoes: number
  messagesSent: number
  retries429: number
}

const REQUEST_TIMEOUT_MS = 60_000
const ECHO_TIMEOUT_MS = 15_000
const MAX_REDIRECTS = 10
/** A progress stream ended early is opened again at most this many times, this long apart (the hub's SSE `retry:`). */
const PROGRESS_REOPENS = 20
const PROGRESS_RETRY_MS = 500

export class UserError extends Error {
  constructor(readonly code: string, message: string) { super(message) }
}

export class SimulatedUser {
  readonly o: SimulatedUserOptions
  readonly tally: UserTally = { loggedIn: false, spawned: false, stopped: false, echoes: 0, messagesSent: 0, retries429: 0 }
  #state: UserState = 'waiting'
  #jar = new CookieJar()
  #ws: WebSocket | undefined
  #closing = false

  constructor(o: SimulatedUserOptions) { this.o = o }

  get state(): UserState { return this.#state }

  /** The user's kernel websocket, once opened (the cull and restart scenarios drive it themselves). */
  get websocket(): WebSocket | undefined { return this.#ws }

  #to(next: UserState): void {
    const from = this.#state
    this.#state = next
    this.o.onState?.(from, next)
  }

  /**
   * Run the whole visit. Resolves when the user has left (a silent-ws user leaves its socket open).
   * `work`: what the user does once its websocket is open, in place of work() (the cull and restart
   * scenarios drive their users themselves); a throw fails the user.
   */
  async run(work: () => Promise<void> = () => this.work()): Promise<void> {
    const r = this.o.recorder
    try {
      this.#to('login'); await this.#phase('login', () => this.login())
      this.#to('spawning'); await this.#phase('spawn', () => this.spawn())
      this.#to('opening'); await this.#phase('first_page', () => this.firstPage())
      await this.#phase('ws_open', () => this.openWebsocket())
      this.#to('working'); await work()
      this.#to('leaving'); await this.leave()
      this.#to(this.o.leave === 'silent-ws' ? 'silent' : 'done')
    } catch (err) {
      const code = err instanceof UserError ? err.code : 'user_exception'
      r.count(`failed:${code}`)
      r.note(`failed:${code}`, `${this.o.name} in ${this.#state}: ${(err as Error).message}${(err as Error).cause ? ` (${String(((err as Error).cause as Error).message ?? (err as Error).cause)})` : ''}`)
      r.count(`failed_in:${this.#state}`)
      this.#ws?.terminate()
      this.#to('failed')
    }
  }

  /** End a silent user's websocket (the runner calls this when the run ends). */
  close(): void {
    this.#closing = true
    this.#ws?.terminate()
  }

  async #phase(name: string, fn: () => Promise<void>): Promise<void> {
    const t0 = performance.now()
    try {
      await fn()
      this.o.recorder.record(`phase:${name}`, performance.now() - t0)
    } catch (err) {
      this.o.recorder.error(`phase:${name}`)
      throw err
    }
  }

  async login(): Promise<void> {
    const page = await this.request('GET', '/hub/login')
    if (page.status !== 200 || !/name="username"/.test(page.body)) throw new UserError('login_page', `GET /hub/login: ${page.status}${page.status === 200 ? ' (no login form)' : ''}`)
    // Send the form's `_xsrf` when the page has one (fleethub; JupyterHub 4.1+). JupyterHub 3.0's
    // form has none and checks none (spec/jupyterhub-contract.md §5): the same code, driven by the page.
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page.body)?.[1]
    const body = new URLSearchParams({ ...(xsrf ? { _xsrf: xsrf } : {}), username: this.o.name, password: this.o.password })
    const res = await this.request('POST', '/hub/login', { body, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.o.base } })
    if (res.status !== 302) throw new UserError('login_refused', `POST /hub/login: ${res.status}`)
    this.tally.loggedIn = true
    this.o.recorder.count('login_ok')
  }

  /**
   * Cookie-authenticated API calls carry a same-origin Referer, as the hub's own pages' scripts
   * send: JupyterHub 3.0 ignores the cookie without one (contract §7.1), fleethub checks the origin.
   */
  async spawn(): Promise<void> {
    const deadline = performance.now() + (this.o.spawnTimeoutMs ?? 120_000)
    const api = `/hub/api/users/${encodeURIComponent(this.o.name)}/server`
    const referer = `${this.o.base}/hub/home`
    for (let attempt = 0; attempt < 1000; attempt++) {
      const res = await this.request('POST', api, { headers: { referer } })
      if (res.status === 429) {
        this.tally.retries429++
        this.o.recorder.count('spawn_429')
        const wait = Math.min(Math.max(Number(res.headers.get('retry-after')) || 1, 0.1) * 1000, deadline - performance.now())
        if (wait <= 0) throw new UserError('spawn_timeout', 'spawn: still refused (429) at the deadline')
        await sleep(wait * (0.8 + Math.random() * 0.4))
        continue
      }
      if (res.status === 201) break
      if (res.status !== 202) throw new UserError('spawn_refused', `POST ${api}: ${res.status} ${res.body.slice(0, 200)}`)
      await this.followProgress(`${api}/progress`, referer, deadline)
      break
    }
    this.tally.spawned = true
    this.o.recorder.count('spawn_ok')
  }

  /**
   * Read the event stream to its end; the last event must say ready. A stream that ends with no
   * outcome (a hub draining in a rolling restart ends its streams early) is opened again, as the
   * spawn-pending page's EventSource does, and counted as `progress_reopened`.
   */
  async followProgress(path: string, referer: string, deadline: number): Promise<void> {
    for (let i = 0; i <= PROGRESS_REOPENS; i++) {
      const res = await this.request('GET', path, { headers: { referer, accept: 'text/event-stream' } }, Math.max(1000, deadline - performance.now()))
      if (res.status !== 200) throw new UserError('progress_refused', `GET progress: ${res.status}`)
      const events = res.body.split('\n\n').filter(c => c.startsWith('data: '))
        .map(c => { try { return JSON.parse(c.slice(6)) as { ready?: boolean; failed?: boolean; message?: string } } catch { return {} } })
      const last = events[events.length - 1]
      if (last?.ready) return
      if (last?.failed || performance.now() >= deadline) throw new UserError('spawn_failed', `spawn did not become ready: ${last?.message ?? 'no events'}`)
      this.o.recorder.count('progress_reopened')
      await new Promise(r => setTimeout(r, PROGRESS_RETRY_MS))
    }
    throw new UserError('spawn_failed', `the progress stream ended ${PROGRESS_REOPENS + 1} times without an outcome`)
  }

  /** `GET /user/<name>/` through the proxy, following the OAuth redirects back to the page. */
  async firstPage(): Promise<void> {
    let path = `/user/${encodeURIComponent(this.o.name)}/`
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.request('GET', path)
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, `${this.o.base}${path}`)
        if (next.origin !== new URL(this.o.base).origin) throw new UserError('first_page', `redirected off the hub: ${next.origin}`)
        path = next.pathname + next.search
        continue
      }
      if (res.status !== 200) throw new UserError('first_page', `GET ${path}: ${res.status}`)
      return
    }
    throw new UserError('first_page', 'too many redirects')
  }

  async openWebsocket(): Promise<void> {
    const path = `/user/${encodeURIComponent(this.o.name)}/api/kernels/${randomUUID()}/channels`
    const ws = new WebSocket(`${this.o.base.replace(/^http/, 'ws')}${path}`, { headers: { cookie: this.#jar.header(path), origin: this.o.base }, handshakeTimeout: REQUEST_TIMEOUT_MS })
    this.#ws = ws
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) => { res.resume(); reject(new UserError('ws_refused', `websocket: ${res.statusCode}`)) })
      ws.once('error', err => reject(new UserError('ws_error', err.message)))
    })
    ws.on('error', () => undefined)
    ws.once('close', () => { if (!this.#closing) this.o.recorder.count(this.o.expectDrops ? 'ws_closed_by_outage' : 'error:ws_dropped') })
  }

  /** Echo messages until workUntil, with an HTTP request to the server now and then. */
  async work(): Promise<void> {
    const ws = this.#ws!
    const every = this.o.messageIntervalMs ?? 3000
    const httpEvery = this.o.httpIntervalMs ?? 10_000
    const pad = 'x'.repeat(this.o.messageBytes ?? 100)
    let nextHttp = performance.now() + httpEvery * Math.random()
    // At least one echo: a user whose server came up after the hold ended still checks it works.
    for (let seq = 0; seq < 1_000_000 && (seq === 0 || performance.now() < this.o.workUntil); seq++) {
      if (ws.readyState !== WebSocket.OPEN) throw new UserError('ws_dropped', 'the websocket closed while working')
      await this.echo(ws, seq, pad)
      if (performance.now() >= nextHttp) {
        const res = await this.request('GET', `/user/${encodeURIComponent(this.o.name)}/api/status`)
        if (res.status !== 200) this.o.recorder.count(`error:server_http_${res.status}`)
        nextHttp = performance.now() + httpEvery * (0.5 + Math.random())
      }
      const wait = Math.min(every * (0.5 + Math.random()), this.o.workUntil - performance.now())
      if (wait > 0) await sleep(wait)
    }
  }

  async echo(ws: WebSocket, seq: number, pad: string): Promise<void> {
    const msg = JSON.stringify({ seq, user: this.o.name, pad })
    const t0 = performance.now()
    const got = new Promise<boolean>(resolve => {
      const timer = setTimeout(() => { ws.off('message', onMessage); resolve(false) }, ECHO_TIMEOUT_MS)
      const onMessage = (data: unknown) => {
        if (String(data) !== msg) return
        clearTimeout(timer); ws.off('message', onMessage); resolve(true)
      }
      ws.on('message', onMessage)
    })
    ws.send(msg)
    this.tally.messagesSent++
    if (await got) {
      this.tally.echoes++
      this.o.recorder.record('phase:ws_echo', performance.now() - t0)
    } else {
      this.o.recorder.error('phase:ws_echo')
      this.o.recorder.count('error:ws_echo_timeout')
    }
  }

  async leave(): Promise<void> {
    this.o.recorder.count(`leave:${this.o.leave}`)
    if (this.o.leave === 'silent-ws') return
    this.#closing = true
    this.#ws?.close()
    if (this.o.leave === 'abandon') return
    await this.#phase('stop', async () => {
      const api = `/hub/api/users/${encodeURIComponent(this.o.name)}/server`
      const res = await this.request('DELETE', api, { headers: { referer: `${this.o.base}/hub/home` } })
      if (res.status !== 202 && res.status !== 204) throw new UserError('stop_refused', `DELETE ${api}: ${res.status}`)
      this.tally.stopped = true
      this.o.recorder.count('stop_ok')
      const out = await this.request('GET', '/hub/logout')
      if (out.status >= 400) throw new UserError('logout', `GET /hub/logout: ${out.status}`)
    })
  }

  /**
   * One request with this user's cookies, no redirect following, timed under a route key with the
   * user's name and ids taken out (`GET /user/{name}/api/status`). 5xx and network errors counted.
   */
  async request(method: string, path: string, init: { body?: URLSearchParams | string; headers?: Record<string, string> } = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ status: number; headers: Headers; body: string }> {
    const url = new URL(path, this.o.base)
    const key = `http:${method} ${routeKey(url.pathname, this.o.name)}`
    const headers: Record<string, string> = { ...init.headers }
    const cookie = this.#jar.header(url.pathname)
    if (cookie) headers.cookie = cookie
    const t0 = performance.now()
    try {
      const res = await fetch(url, { method, headers, body: init.body, redirect: 'manual', signal: AbortSignal.timeout(Math.round(timeoutMs)) })
      this.#jar.store(res.headers)
      const body = await res.text()
      if (res.status >= 500) {
        this.o.recorder.error(key)
        this.o.recorder.count(`error:5xx`)
        this.o.recorder.count(`error:${res.status} ${key.slice(5)}`)
      } else this.o.recorder.record(key, performance.now() - t0)
      return { status: res.status, headers: res.headers, body }
    } catch (err) {
      this.o.recorder.error(key)
      const name = (err as Error).name === 'TimeoutError' ? 'timeout' : 'network'
      this.o.recorder.count(`error:${name}`)
      const cause = (err as Error).cause as { code?: string; message?: string } | undefined
      throw new UserError(name, `${method} ${url.pathname}: ${(err as Error).message}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}`)
    }
  }
}

/** `/user/s12/oauth_callback` → `/user/{name}/oauth_callback`: one key per route, not per user. */
export function routeKey(pathname: string, name: string): string {
  const enc = encodeURIComponent(name)
  return pathname.split('/').map(seg => seg === enc || seg === name ? '{name}' : /^[0-9a-f-]{32,36}$/.test(seg) ? '{id}' : seg).join('/')
}
