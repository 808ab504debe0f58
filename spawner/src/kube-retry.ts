/**
 * How the Kubernetes spawner talks to a busy API server: a shared client-side token bucket (so
 * a class start of 1,000 spawns does not storm the control plane), `Retry-After` honoured on 429
 * (and the whole bucket paused, since every caller would get the same answer), and bounded
 * exponential backoff with full jitter on 5xx and connection errors. No client import: errors
 * are classified by shape (`ApiException` has a numeric `code` and `headers`).
 */

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET'])

export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  #tokens: number
  #at = Date.now()
  #pausedUntil = 0
  #queue: Promise<void> = Promise.resolve()

  /** `rate` tokens per second, at most `burst` saved up. */
  constructor(rate: number, burst: number) {
    this.#rate = rate
    this.#burst = Math.max(1, burst)
    this.#tokens = this.#burst
  }

  /** Resolves when a request may go out; callers are served in order. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(() => this.#wait(signal))
    this.#queue = turn.catch(() => undefined)
    return turn
  }

  /** Nobody sends before `until` (epoch ms), e.g. after a 429 with Retry-After. */
  pauseUntil(until: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, until)
  }

  async #wait(signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      signal?.throwIfAborted()
      const now = Date.now()
      if (now < this.#pausedUntil) { await sleep(this.#pausedUntil - now, signal); continue }
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate)
      this.#at = now
      if (this.#tokens >= 1) { this.#tokens -= 1; return }
      await sleep(Math.ceil(((1 - this.#tokens) / this.#rate) * 1000), signal)
    }
    throw new Error('token bucket: gave up waiting')
  }
}

export interface RetryOptions {
  /** Give up after this long in total, ms. */
  readonly timeoutMs: number
  /** First backoff step, ms. Default 250. */
  readonly baseMs?: number
  /** Largest backoff step, ms. Default 10000. */
  readonly maxMs?: number
  readonly signal?: AbortSignal
  /** Told about each retry (for logs and tests). */
  readonly onRetry?: (info: { attempt: number, waitMs: number, status?: number, code?: string }) => void
}

/** HTTP status of an API error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown, statusCode?: unknown }
  if (typeof e?.code === 'number') return e.code
  if (typeof e?.statusCode === 'number') return e.statusCode
  return undefined
}

/** Seconds from a `Retry-After` header (seconds or HTTP date); undefined if absent or bad. */
export function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { headers?: Record<string, string> })?.headers
  if (headers === undefined || headers === null) return undefined
  const key = Object.keys(headers).find(k => k.toLowerCase() === 'retry-after')
  if (key === undefined) return undefined
  const v = String(headers[key]).trim()
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/** Connection-level failure (no HTTP answer). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown, errno?: unknown, type?: unknown, cause?: { code?: unknown } }
  const code = typeof e?.code === 'string' ? e.code : typeof e?.errno === 'string' ? e.errno : typeof e?.cause?.code === 'string' ? e.cause.code : undefined
  return (code !== undefined && CONNECTION_ERRORS.has(code)) || e?.type === 'system'
}

/**
 * Run `call` (which takes a token from `bucket` first) until it succeeds, fails with a
 * non-retryable error, or `timeoutMs` runs out.
 */
export async function withRetry<T>(bucket: TokenBucket, call: () => Promise<T>, o: RetryOptions): Promise<T> {
  const start = Date.now()
  const base = o.baseMs ?? 250
  const max = o.maxMs ?? 10_000
  for (let attempt = 1; ; attempt++) {
    await bucket.take(o.signal)
    try {
      return await call()
    } catch (err) {
      const status = statusOf(err)
      let waitMs: number
      if (status === 429) {
        waitMs = retryAfterMs(err) ?? 1000
        bucket.pauseUntil(Date.now() + waitMs)
      } else if ((status !== undefined && status >= 500) || isConnectionError(err)) {
        waitMs = Math.random() * Math.min(max, base * 2 ** (attempt - 1))
      } else {
        throw err
      }
      if (Date.now() - start + waitMs > o.timeoutMs) throw err
      o.onRetry?.({ attempt, waitMs, status, code: (err as { code?: unknown }).code as string | undefined })
      await sleep(waitMs, o.signal)
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return }
    const onAbort = (): void => { clearTimeout(timer); reject(signal!.reason) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** A short human description of an API failure (ApiException.body is a JSON string). */
export function describeApiError(err: unknown): string {
  const status = statusOf(err)
  const body = (err as { body?: unknown })?.body
  if (status !== undefined) {
    let message: string | undefined
    if (typeof body === 'string') { try { message = JSON.parse(body).message } catch { message = body.slice(0, 200) } }
    else if (body !== null && typeof body === 'object') message = (body as { message?: string }).message
    return `HTTP ${status}${message !== undefined ? `: ${message}` : ''}`
  }
  return (err as Error)?.message ?? String(err)
}
