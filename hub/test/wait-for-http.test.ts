/** The readiness check: any status below 500 is "up", 5xx and refused connections are retried until the deadline. */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { freeLowPort } from '../../core/src/embedded-postgres.js'
import { waitForHttp } from '../src/servers/wait-for-http.js'

t.test('5xx is retried; the first status below 500 (a redirect, unanswered) is the answer', async t => {
  let hits = 0
  const server = http.createServer((req, res) => {
    hits++
    if (hits <= 2) { res.writeHead(503); res.end(); return }
    res.writeHead(302, { location: '/elsewhere' }); res.end()
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise(r => server.close(r)))
  const status = await waitForHttp(`http://127.0.0.1:${(server.address() as AddressInfo).port}/user/a/`, { timeoutMs: 5000 })
  t.equal(status, 302)
  t.equal(hits, 3, 'two 503s were retried, the redirect was not followed')
})

t.test('nothing listening: fails at the deadline with the reason', async t => {
  const port = await freeLowPort()
  const t0 = Date.now()
  await t.rejects(waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 300 }), /did not answer at .* within 0 seconds \(ECONNREFUSED\)/)
  t.ok(Date.now() - t0 < 2000, 'gave up near the deadline')
})

t.test('a server that never answers: each attempt times out, then the whole check fails', async t => {
  const server = http.createServer(() => { /* never answers */ })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise(r => { server.close(r); server.closeAllConnections() }))
  await t.rejects(waitForHttp(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { timeoutMs: 400 }), /ETIMEDOUT/)
})

t.test('an abort stops the check at once', async t => {
  const port = await freeLowPort()
  const controller = new AbortController()
  setTimeout(() => controller.abort(new Error('cancelled')), 100)
  const t0 = Date.now()
  await t.rejects(waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 10_000, signal: controller.signal }), /cancelled/)
  t.ok(Date.now() - t0 < 2000)
})
