/**
 * The hub's readiness check of a new server (contract §4.2): GET its URL without auth or
 * redirects until any status below 500, with backoff, until a deadline. Plain node:http with no
 * keep-alive (one short request to a server seen once): at a burst of spawns fetch's per-request
 * machinery was a visible share of the hub's CPU.
 */
import http from 'node:http'
import https from 'node:https'

function getStatus(url: URL, timeoutMs: number, signal: AbortSignal | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).get(url, { agent: false, timeout: timeoutMs, signal, headers: { connection: 'close' } }, res => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.once('timeout', () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })))
    req.once('error', reject)
  })
}

export async function waitForHttp(url: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<number> {
  const target = new URL(url)
  const deadline = Date.now() + o.timeoutMs
  let delay = 25
  let last = 'no answer'
  while (Date.now() < deadline) {
    o.signal?.throwIfAborted()
    try {
      const status = await getStatus(target, Math.min(5000, Math.max(100, deadline - Date.now())), o.signal)
      if (status < 500) return status
      last = `HTTP ${status}`
    } catch (err) {
      o.signal?.throwIfAborted()
      last = (err as { code?: string }).code ?? (err instanceof Error ? err.message : String(err))
    }
    await new Promise(r => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))))
    delay = Math.min(delay * 2, 1000)
  }
  throw new Error(`the server did not answer at ${url} within ${Math.round(o.timeoutMs / 1000)} seconds (${last})`)
}
