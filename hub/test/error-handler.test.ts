/**
 * The edge: one mapping from what a handler throws to the answer (errors.ts, error-handler.ts),
 * and a request id on every answer, in the log line and in the body of a 5xx. An express app of
 * its own on port 0, so each case throws exactly what it means to.
 */
import t from 'tap'
import express from 'express'
import type { AddressInfo } from 'node:net'
import { createLogger } from '../../core/src/log.js'
import { requestLog } from '../src/request-id.js'
import { errorHandler } from '../src/error-handler.js'
import { HUB_ERRORS, HttpError, HubError } from '../src/errors.js'

interface T { teardown(fn: () => unknown): void }
interface LogLine { level: number; msg: string; reqId?: string; code?: string; err?: { message?: string } }

async function startApp(t: T): Promise<{ url: string; lines: LogLine[] }> {
  const lines: LogLine[] = []
  const log = createLogger('debug', { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } })
  const app = express()
  app.use(requestLog(log)!) // debug level: every request's id is made at once and logged
  app.get('/hub/api/boom', () => { throw new Error('secret detail') })
  app.get('/hub/boom', () => { throw new Error('secret detail') })
  app.get('/hub/api/scope', () => { throw new HubError('HUB_BAD_SCOPE', 'Unknown scope: nope') })
  app.get('/hub/api/queue', () => { throw new HubError('HUB_SPAWN_QUEUE_FULL') })
  app.get('/hub/api/oauth2/token', () => { throw new HttpError('HUB_OAUTH_INVALID_CLIENT', 'client authentication failed', { status: 401 }) })
  app.post('/hub/api/json', express.json(), () => { throw new Error('not reached') })
  app.get('/hub/stats', (_req, res) => { res.locals.errorFormat = 'json'; throw new HttpError('HUB_FORBIDDEN') })
  app.use(errorHandler(log))
  const server = app.listen(0, '127.0.0.1')
  await new Promise(r => server.once('listening', r))
  t.teardown(() => new Promise(r => server.close(r)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines }
}

t.test('the catalogue: every code has a status of an error and a message', async t => {
  for (const [code, entry] of Object.entries(HUB_ERRORS) as Array<[string, { status: number; message: string }]>) {
    t.ok(code.startsWith('HUB_') && entry.status >= 400 && entry.status < 600 && entry.message.length > 0, code)
  }
  const e = new HttpError('HUB_ACTIVE_SERVER_LIMIT')
  t.match(e, { statusCode: 429, code: 'HUB_ACTIVE_SERVER_LIMIT', headers: { 'retry-after': '30' } }, 'status and Retry-After from the catalogue')
})

t.test('a 5xx: the request id in the header, the body and the log line; no detail leaks', async t => {
  const { url, lines } = await startApp(t)
  const res = await fetch(`${url}/hub/api/boom`)
  const id = res.headers.get('x-request-id')
  t.equal(res.status, 500)
  t.match(id, /^[0-9a-f-]{36}$/, 'a fresh UUID')
  t.same(await res.json(), { status: 500, message: 'Internal error', code: 'HUB_INTERNAL', request_id: id })
  await new Promise(r => setTimeout(r, 20)) // the request line is written when the answer has gone
  const failed = lines.find(l => l.msg === 'request failed')
  t.match(failed, { level: 50, reqId: id, code: 'HUB_INTERNAL', err: { message: 'secret detail' } }, 'logged at error with the error')
  t.match(lines.find(l => l.msg === 'request'), { reqId: id, level: 20 }, 'and in the request line')

  const page = await fetch(`${url}/hub/boom`, { headers: { 'x-request-id': 'proxy-1234.abc' } })
  t.equal(page.status, 500)
  t.equal(page.headers.get('x-request-id'), 'proxy-1234.abc', 'a sane incoming id is kept')
  t.match(await page.text(), /Request id: <code>proxy-1234\.abc<\/code>/, 'the HTML page shows it')
})

t.test('an id that could forge a log line or a header is replaced', async t => {
  const { url } = await startApp(t)
  for (const bad of ['has space', 'x'.repeat(200), 'quote"d']) {
    const res = await fetch(`${url}/hub/api/scope`, { headers: { 'x-request-id': bad } })
    t.not(res.headers.get('x-request-id'), bad, JSON.stringify(bad.slice(0, 20)))
  }
})

t.test('domain errors, body-parser errors, OAuth2 bodies and a JSON endpoint outside /hub/api', async t => {
  const { url, lines } = await startApp(t)
  const scope = await fetch(`${url}/hub/api/scope`)
  t.equal(scope.status, 400)
  t.same(await scope.json(), { status: 400, message: 'Unknown scope: nope', code: 'HUB_BAD_SCOPE' }, 'a 4xx carries no request id in the body')
  t.match(lines.find(l => l.msg === 'request rejected'), { level: 30, code: 'HUB_BAD_SCOPE' }, 'a 4xx is logged at info')

  const queue = await fetch(`${url}/hub/api/queue`)
  t.equal(queue.status, 429)
  t.equal(queue.headers.get('retry-after'), '10')
  t.match(await queue.json(), { code: 'HUB_SPAWN_QUEUE_FULL', message: HUB_ERRORS.HUB_SPAWN_QUEUE_FULL.message })

  const json = await fetch(`${url}/hub/api/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' })
  t.equal(json.status, 400)
  t.match(await json.json(), { code: 'HUB_BAD_JSON' })

  const oauth = await fetch(`${url}/hub/api/oauth2/token`)
  t.equal(oauth.status, 401)
  t.same(await oauth.json(), { error: 'invalid_client', error_description: 'client authentication failed' }, 'RFC 6749 §5.2')

  const stats = await fetch(`${url}/hub/stats`)
  t.equal(stats.status, 403)
  t.same(await stats.json(), { status: 403, message: 'Forbidden', code: 'HUB_FORBIDDEN' })
})
