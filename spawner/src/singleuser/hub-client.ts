/**
 * The single-user server's calls to the hub (contract §4): version check, token identification,
 * OAuth code exchange, activity reports. Goes through an injectable `fetch` so that thousands of
 * simulated servers in one process can share one connection pool.
 */
import type { Logger } from 'pino'
import { SingleUserError, hubUnreachable } from './errors.js'

/** The hub protocol version this server implements; compared (major.minor) with the hub's. */
export const HUB_PROTOCOL_VERSION = '3.0.0'
const MAX_BODY_BYTES = 1024 * 1024

export type Fetch = typeof globalThis.fetch

/** What `/hub/api/user` says about a token (the fields we use). */
export interface HubIdentity {
  readonly kind?: string
  readonly name: string
  readonly scopes: readonly string[]
  readonly session_id?: string | null
}

export interface HubClientOptions {
  readonly apiUrl: string
  readonly apiToken: string
  readonly clientId: string
  readonly oauthCallbackUrl: string
  readonly log: Logger
  readonly fetch?: Fetch
  /** Per-request timeout in ms; default 10 s. */
  readonly requestTimeoutMs?: number
}

export class HubClient {
  readonly #o: HubClientOptions
  readonly #fetch: Fetch

  constructor(options: HubClientOptions) {
    this.#o = options
    this.#fetch = options.fetch ?? globalThis.fetch
  }

  async #request(url: string, init: RequestInit = {}): Promise<{ status: number, body: string, headers: Headers }> {
    const res = await this.#fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(this.#o.requestTimeoutMs ?? 10_000) })
    return { status: res.status, body: await readLimited(res), headers: res.headers }
  }

  /**
   * `GET <apiUrl>` with no auth; on connection failure sleep `retryDelaysMs[i]` and retry (the
   * real server: 2, 4, 8, 16, 16 s, then exit 1). Returns the hub's version header.
   */
  async checkVersion(retryDelaysMs: readonly number[], signal?: AbortSignal): Promise<string | undefined> {
    let lastError: unknown
    for (let attempt = 0; attempt <= retryDelaysMs.length; attempt++) {
      try {
        const res = await this.#request(this.#o.apiUrl)
        const version = res.headers.get('x-jupyterhub-version') ?? undefined
        if (!sameMinor(version, HUB_PROTOCOL_VERSION)) {
          this.#o.log.warn({ hubVersion: version ?? null, ours: HUB_PROTOCOL_VERSION }, 'hub version differs from ours')
        }
        return version
      } catch (err) {
        lastError = err
        if (attempt === retryDelaysMs.length || signal?.aborted) break
        this.#o.log.warn({ attempt: attempt + 1, err: errorSummary(err) }, 'hub not reachable, retrying')
        await sleep(retryDelaysMs[attempt], signal)
      }
    }
    throw hubUnreachable(this.#o.apiUrl, retryDelaysMs.length + 1, lastError)
  }

  /**
   * Who owns `token`? `undefined` when the hub answers 403 (unknown, revoked, expired: anonymous).
   * Any other 4xx is a hub/contract problem (status 500), 5xx or no answer a bad gateway (502).
   */
  async identify(token: string): Promise<HubIdentity | undefined> {
    let res
    try {
      res = await this.#request(`${this.#o.apiUrl}/user`, { headers: { authorization: `token ${token}` } })
    } catch (err) {
      throw new SingleUserError('SINGLEUSER_HUB_UNAVAILABLE', 'the hub did not answer a token check', { cause: err })
    }
    if (res.status === 403) return undefined
    if (res.status >= 500) throw new SingleUserError('SINGLEUSER_HUB_UNAVAILABLE', `the hub answered ${res.status} to a token check`)
    if (res.status !== 200) throw new SingleUserError('SINGLEUSER_HUB_PROTOCOL', `the hub answered ${res.status} to a token check`)
    const model = parseJson(res.body) as Partial<HubIdentity> | undefined
    if (!model || typeof model.name !== 'string' || !Array.isArray(model.scopes)) {
      throw new SingleUserError('SINGLEUSER_HUB_PROTOCOL', 'the hub sent a malformed identity')
    }
    return { kind: model.kind, name: model.name, scopes: model.scopes.filter(s => typeof s === 'string'), session_id: model.session_id ?? null }
  }

  /** Exchange an OAuth code for an access token; `undefined` when the hub refuses the code (4xx). */
  async exchangeCode(code: string): Promise<string | undefined> {
    const form = new URLSearchParams({
      client_id: this.#o.clientId, client_secret: this.#o.apiToken, grant_type: 'authorization_code',
      code, redirect_uri: this.#o.oauthCallbackUrl,
    })
    let res
    try {
      res = await this.#request(`${this.#o.apiUrl}/oauth2/token`, {
        method: 'POST', body: form.toString(),
        headers: { authorization: `token ${this.#o.apiToken}`, 'content-type': 'application/x-www-form-urlencoded' },
      })
    } catch (err) {
      throw new SingleUserError('SINGLEUSER_HUB_UNAVAILABLE', 'the hub did not answer the OAuth code exchange', { cause: err })
    }
    if (res.status >= 400 && res.status < 500) return undefined
    const body = parseJson(res.body) as { access_token?: unknown } | undefined
    if (res.status !== 200 || typeof body?.access_token !== 'string' || body.access_token === '') {
      throw new SingleUserError('SINGLEUSER_HUB_UNAVAILABLE', `the OAuth code exchange failed with ${res.status}`)
    }
    return body.access_token
  }

  /** One activity POST; throws on a network error or a non-2xx answer. */
  async postActivity(url: string, body: unknown): Promise<void> {
    const res = await this.#request(url, {
      method: 'POST', body: JSON.stringify(body),
      headers: { authorization: `token ${this.#o.apiToken}`, 'content-type': 'application/json' },
    })
    if (res.status < 200 || res.status >= 300) {
      throw new SingleUserError('SINGLEUSER_ACTIVITY_REJECTED', `the hub answered ${res.status} to an activity report`)
    }
  }
}

async function readLimited(res: Response): Promise<string> {
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength
    if (size > MAX_BODY_BYTES) throw new SingleUserError('SINGLEUSER_HUB_PROTOCOL', 'the hub sent a body over 1 MiB')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseJson(text: string): unknown {
  try { return JSON.parse(text) } catch { return undefined }
}

export function sameMinor(a: string | undefined, b: string): boolean {
  if (!a) return false
  const [x1, y1] = a.split('.'), [x2, y2] = b.split('.')
  return x1 === x2 && y1 === y2
}

/** A log-safe summary of a network error: its code and message, no stack, no URL query. */
export function errorSummary(err: unknown): string {
  const e = err as { code?: string, message?: string, cause?: { code?: string } }
  return e?.cause?.code ?? e?.code ?? e?.message ?? String(err)
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal?.aborted) return resolve()
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
