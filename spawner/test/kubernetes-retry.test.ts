/** The spawner's API call discipline: token bucket, Retry-After, bounded jittered backoff. */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { isConnectionError, retryAfterMs, statusOf, TokenBucket, withRetry } from '../src/kube-retry.js'

t.test('the token bucket spaces calls at its rate after the burst', async t => {
  const bucket = new TokenBucket(20, 5)
  const t0 = Date.now()
  for (let i = 0; i < 15; i++) await bucket.take()
  const ms = Date.now() - t0
  t.ok(ms >= 450, `10 calls beyond a burst of 5 at 20/s take >= 0.5 s (took ${ms} ms)`)
  const paused = new TokenBucket(1000, 1000)
  paused.pauseUntil(Date.now() + 300)
  const p0 = Date.now()
  await paused.take()
  t.ok(Date.now() - p0 >= 280, 'pauseUntil holds every caller')
  const ac = new AbortController()
  const slow = new TokenBucket(0.1, 1)
  await slow.take()
  const waiting = slow.take(ac.signal)
  ac.abort(new Error('gone'))
  await t.rejects(waiting, /gone/)
})

t.test('error classification', async t => {
  t.equal(statusOf({ code: 429 }), 429)
  t.equal(statusOf({ statusCode: 410 }), 410)
  t.equal(statusOf(new Error('x')), undefined)
  t.equal(retryAfterMs({ headers: { 'Retry-After': '2' } }), 2000)
  t.equal(retryAfterMs({ headers: { 'retry-after': 'soon' } }), undefined)
  t.ok((retryAfterMs({ headers: { 'retry-after': new Date(Date.now() + 5000).toUTCString() } }) ?? 0) > 3000)
  t.ok(isConnectionError({ code: 'ECONNREFUSED' }))
  t.ok(isConnectionError({ cause: { code: 'ECONNRESET' } }))
  t.notOk(isConnectionError({ code: 404 }))
})

t.test('withRetry: 429 waits Retry-After, 5xx backs off, 4xx fails at once, the total is bounded', async t => {
  const bucket = new TokenBucket(1000, 1000)
  const times: number[] = []
  let n = 0
  const value = await withRetry(bucket, async () => {
    times.push(Date.now())
    n++
    if (n === 1) throw Object.assign(new Error('busy'), { code: 429, headers: { 'retry-after': '1' } })
    if (n === 2) throw Object.assign(new Error('oops'), { code: 503 })
    return 'ok'
  }, { timeoutMs: 10_000, baseMs: 50 })
  t.equal(value, 'ok')
  t.ok(times[1] - times[0] >= 950, `Retry-After honoured (${times[1] - times[0]} ms)`)
  t.ok(times[2] - times[1] <= 500, '5xx retried after a short jittered backoff')
  let calls404 = 0
  await t.rejects(withRetry(bucket, async () => { calls404++; throw Object.assign(new Error('nope'), { code: 404 }) }, { timeoutMs: 10_000 }), /nope/)
  t.equal(calls404, 1, '4xx is not retried')
  // A real closed port: connection refused is retried until the bound, then surfaces.
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  let attempts = 0
  const t0 = Date.now()
  await t.rejects(withRetry(bucket, async () => { attempts++; await fetch(`http://127.0.0.1:${port}/`) }, { timeoutMs: 800, baseMs: 50, maxMs: 200 }))
  t.ok(attempts >= 2, `retried connection errors (${attempts} attempts)`)
  t.ok(Date.now() - t0 < 2000, 'gave up within the bound')
})
