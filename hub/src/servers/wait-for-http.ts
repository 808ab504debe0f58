/**
 * The hub's readiness check of a new server (contract §4.2): GET its URL without auth or
 * redirects until any status below 500, with backoff, until a deadline.
 */
export async function waitForHttp(url: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<number> {
  const deadline = Date.now() + o.timeoutMs
  let delay = 25
  let last = 'no answer'
  while (Date.now() < deadline) {
    o.signal?.throwIfAborted()
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.any([AbortSignal.timeout(Math.min(5000, Math.max(100, deadline - Date.now()))), ...(o.signal ? [o.signal] : [])]) })
      await res.body?.cancel()
      if (res.status < 500) return res.status
      last = `HTTP ${res.status}`
    } catch (err) {
      o.signal?.throwIfAborted()
      last = (err as { cause?: { code?: string } }).cause?.code ?? (err instanceof Error ? err.message : String(err))
    }
    await new Promise(r => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))))
    delay = Math.min(delay * 2, 1000)
  }
  throw new Error(`the server did not answer at ${url} within ${Math.round(o.timeoutMs / 1000)} seconds (${last})`)
}
