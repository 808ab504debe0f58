/**
 * A request that reaches the hub while it is still starting (the port is open before the app is
 * attached, because servers and the proxy need the real port) gets a 503 with Retry-After at once,
 * never a connection that hangs: a health check or a load balancer must not wait forever.
 */
import t from 'tap'
import { freeLowPort } from '../../core/src/embedded-postgres.js'
import { startTestHub } from '../../test/helpers/hub.js'

t.test('requests during start-up get 503 HUB_STARTING, then the hub answers', async t => {
  const port = await freeLowPort()
  const seen: Array<{ status: number; code?: string; retryAfter: string | null }> = []
  let started = false
  // The proxy child boots between listen and attaching the app (a node process start, >= tens of
  // ms): poll every few ms, each request bounded by a 3 s timeout, so a hang fails the test.
  const poller = (async () => {
    for (let i = 0; i < 4000 && !started; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/hub/health`, { signal: AbortSignal.timeout(3000) }).catch((err: Error) => err)
      if (res instanceof Error) {
        if (/abort|timeout/i.test(`${res.name} ${res.message}`)) throw new Error('a request during start-up hung')
      } else {
        const body = await res.json() as { code?: string }
        seen.push({ status: res.status, code: body.code, retryAfter: res.headers.get('retry-after') })
        if (res.status === 200) break
      }
      await new Promise(r => setTimeout(r, 2))
    }
  })()
  const hub = await startTestHub(t, { args: ['--hub-port', String(port)] })
  started = true
  await poller
  const early = seen.filter(s => s.status !== 200)
  t.ok(early.length > 0, `requests reached the hub before its app was attached (${early.length})`)
  t.ok(early.every(s => s.status === 503 && s.code === 'HUB_STARTING' && s.retryAfter === '1'), 'each got 503 HUB_STARTING with Retry-After: 1')
  const after = await fetch(`${hub.hubUrl}/hub/health`)
  t.equal(after.status, 200, 'once started the hub answers')
})
