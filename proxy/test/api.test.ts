import t from 'tap'
import { request } from 'node:http'
import { startTestProxy, TOKEN } from './fixtures.js'

const AUTH = { authorization: `token ${TOKEN}` }

interface Case {
  readonly name: string
  readonly method: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string
  readonly status: number
  /** exact body text, or a RegExp */
  readonly text?: string | RegExp
  readonly contentType?: string | null
}

t.test('CHP API statuses and bodies', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  const target = 'http://127.0.0.1:9'
  const cases: Case[] = [
    { name: 'no token', method: 'GET', path: '/api/routes', headers: {}, status: 403, text: '', contentType: null },
    { name: 'wrong token', method: 'GET', path: '/api/routes', headers: { authorization: 'token nope' }, status: 403, text: '' },
    { name: 'Bearer is refused', method: 'GET', path: '/api/routes', headers: { authorization: `Bearer ${TOKEN}` }, status: 403, text: '' },
    { name: 'token with extra spaces', method: 'GET', path: '/api/routes', headers: { authorization: `token   ${TOKEN}` }, status: 200, text: '{}' },
    { name: 'POST without token', method: 'POST', path: '/api/routes/x', headers: {}, body: `{"target":"${target}"}`, status: 403, text: '' },
    { name: 'empty table', method: 'GET', path: '/api/routes', status: 200, text: '{}', contentType: 'application/json' },
    { name: 'POST as form content type', method: 'POST', path: '/api/routes/user/alice', headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' },
      body: `{"user": "alice", "server_name": "", "target": "${target}", "jupyterhub": true}`, status: 201, text: '' },
    { name: 'GET one route', method: 'GET', path: '/api/routes/user/alice', status: 200,
      text: /^\{"user":"alice","server_name":"","target":"http:\/\/127\.0\.0\.1:9","jupyterhub":true,"last_activity":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"\}$/ },
    { name: 'GET one route, trailing slash', method: 'GET', path: '/api/routes/user/alice/', status: 200, text: /"user":"alice"/ },
    { name: 'GET missing route', method: 'GET', path: '/api/routes/user/zed', status: 404, text: '' },
    { name: 'POST escaped path', method: 'POST', path: '/api/routes/user/carol/bad%20name%21', body: `{"target":"${target}","server_name":"bad name!"}`, status: 201, text: '' },
    { name: 'GET shows unescaped key', method: 'GET', path: '/api/routes', status: 200, text: /"\/user\/carol\/bad name!":\{"target"/ },
    { name: 'POST /api/routes targets /', method: 'POST', path: '/api/routes', body: `{"hub": true, "target": "${target}", "jupyterhub": true}`, status: 201 },
    { name: 'root route listed', method: 'GET', path: '/api/routes', status: 200, text: /"\/":\{"hub":true,"target":"http:\/\/127\.0\.0\.1:9","jupyterhub":true,"last_activity"/ },
    { name: 'invalid JSON', method: 'POST', path: '/api/routes/x', body: '{nope', status: 400, text: /^Body not valid JSON: SyntaxError: / },
    { name: 'empty body', method: 'POST', path: '/api/routes/x', body: '', status: 400, text: 'Body not valid JSON: SyntaxError: Unexpected end of JSON input' },
    { name: 'no target', method: 'POST', path: '/api/routes/x', body: '{"user":"x"}', status: 400, text: "Must specify 'target' as string" },
    { name: 'non-string target', method: 'POST', path: '/api/routes/x', body: '{"target":5}', status: 400, text: "Must specify 'target' as string" },
    { name: 'null body', method: 'POST', path: '/api/routes/x', body: 'null', status: 400, text: "Must specify 'target' as string" },
    { name: 'array body', method: 'POST', path: '/api/routes/x', body: '[1]', status: 400, text: "Must specify 'target' as string" },
    { name: 'target not a URL', method: 'POST', path: '/api/routes/x', body: '{"target":"nope"}', status: 400, text: "Invalid target 'nope': must be an absolute http(s) URL" },
    { name: 'target not http', method: 'POST', path: '/api/routes/x', body: '{"target":"file:///etc/passwd"}', status: 400, text: /must be an absolute http\(s\) URL/ },
    { name: 'bad date', method: 'GET', path: '/api/routes?inactive_since=notadate', status: 400, text: "Invalid datestamp 'notadate' must be ISO8601.", contentType: null },
    { name: 'bad camelCase date', method: 'GET', path: '/api/routes?inactiveSince=x', status: 400, text: "Invalid datestamp 'x' must be ISO8601." },
    { name: 'inactive since the epoch: nothing', method: 'GET', path: '/api/routes?inactive_since=1970-01-01T00:00:00Z', status: 200, text: '{}' },
    { name: 'PUT one route: 405', method: 'PUT', path: '/api/routes/x', body: '{}', status: 405, text: 'Method not supported' },
    { name: 'PATCH: 405 before the token check', method: 'PATCH', path: '/api/routes', headers: {}, status: 405, text: 'Method not supported' },
    { name: 'other API path', method: 'GET', path: '/api/other', status: 404, text: 'Not Found' },
    { name: 'not the API at all', method: 'GET', path: '/user/alice', status: 404, text: 'Not Found' },
    { name: 'bad escape in path', method: 'GET', path: '/api/routes/user/%E0%A4%A', status: 400, text: /Invalid path encoding/ },
    { name: 'DELETE existing', method: 'DELETE', path: '/api/routes/user/carol/bad%20name%21', status: 204, text: '' },
    { name: 'DELETE again', method: 'DELETE', path: '/api/routes/user/carol/bad%20name%21', status: 404, text: '' },
    { name: 'DELETE with trailing slash', method: 'DELETE', path: '/api/routes/user/alice/', status: 204 },
    { name: 'alice gone', method: 'GET', path: '/api/routes/user/alice', status: 404 },
  ]
  for (const c of cases) {
    const res = await fetch(`${proxy.apiUrl}${c.path}`, { method: c.method, headers: c.headers ?? AUTH, body: c.body })
    const text = await res.text()
    t.equal(res.status, c.status, `${c.name}: status`)
    t.equal(res.headers.get('x-fleethub-proxy-boot'), proxy.bootId, `${c.name}: boot header`)
    if (typeof c.text === 'string') t.equal(text, c.text, `${c.name}: body`)
    else if (c.text instanceof RegExp) t.match(text, c.text, `${c.name}: body`)
    if (c.contentType !== undefined) t.equal(res.headers.get('content-type'), c.contentType, `${c.name}: content-type`)
  }
})

t.test('route key order: body order, then last_activity', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  for (const [path, body] of [['/a', '{"target":"http://h:1","hub":true,"jupyterhub":true}'], ['/b', '{"hub":true,"target":"http://h:1","jupyterhub":true}']]) {
    await (await fetch(`${proxy.apiUrl}/api/routes${path}`, { method: 'POST', headers: AUTH, body })).text()
  }
  const all = await (await fetch(`${proxy.apiUrl}/api/routes`, { headers: AUTH })).json() as Record<string, object>
  t.same(Object.keys(all), ['/a', '/b'])
  t.same(Object.keys(all['/a']), ['target', 'hub', 'jupyterhub', 'last_activity'])
  t.same(Object.keys(all['/b']), ['hub', 'target', 'jupyterhub', 'last_activity'])
})

t.test('inactive_since filters on last_activity', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await (await fetch(`${proxy.apiUrl}/api/routes/old`, { method: 'POST', headers: AUTH, body: '{"target":"http://h:1"}' })).text()
  proxy.table.get('/old')!.lastActivity = Date.parse('2020-01-01T00:00:00Z')
  await (await fetch(`${proxy.apiUrl}/api/routes/new`, { method: 'POST', headers: AUTH, body: '{"target":"http://h:1"}' })).text()
  for (const param of ['inactive_since', 'inactiveSince']) {
    const res = await fetch(`${proxy.apiUrl}/api/routes?${param}=2021-01-01T00:00:00.000Z`, { headers: AUTH })
    t.same(Object.keys(await res.json() as object), ['/old'], param)
  }
})

t.test('PUT /api/routes replaces the table atomically', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await (await fetch(`${proxy.apiUrl}/api/routes/stale`, { method: 'POST', headers: AUTH, body: '{"target":"http://h:1"}' })).text()
  await (await fetch(`${proxy.apiUrl}/api/routes/keep`, { method: 'POST', headers: AUTH, body: '{"target":"http://h:1"}' })).text()
  const keepActivity = proxy.table.get('/keep')!.lastActivity

  const bad = await fetch(`${proxy.apiUrl}/api/routes`, { method: 'PUT', headers: AUTH,
    body: JSON.stringify({ '/x': { target: 'http://h:2' }, '/y': { target: 7 } }) })
  t.equal(bad.status, 400)
  t.equal(await bad.text(), "Route '/y': Must specify 'target' as string")
  t.equal(proxy.table.size, 2, 'a bad entry leaves the table untouched')

  for (const body of ['[]', '"x"', 'null', '{']) {
    const res = await fetch(`${proxy.apiUrl}/api/routes`, { method: 'PUT', headers: AUTH, body })
    t.equal(res.status, 400, `PUT ${body}`)
    await res.text()
  }
  const noToken = await fetch(`${proxy.apiUrl}/api/routes`, { method: 'PUT', body: '{}' })
  t.equal(noToken.status, 403)
  await noToken.text()

  const ok = await fetch(`${proxy.apiUrl}/api/routes/`, { method: 'PUT', headers: AUTH, body: JSON.stringify({
    '/keep/': { user: 'k', target: 'http://h:3', last_activity: '2020-01-01T00:00:00.000Z' },
    '/user/new': { target: 'http://h:4', last_activity: '2026-01-02T03:04:05.678Z' },
    '/': { hub: true, target: 'http://h:5' },
  }) })
  t.equal(ok.status, 200)
  t.same(await ok.json(), { routes: 3 })
  const all = await (await fetch(`${proxy.apiUrl}/api/routes`, { headers: AUTH })).json() as Record<string, Record<string, unknown>>
  t.same(Object.keys(all).sort(), ['/', '/keep', '/user/new'])
  t.equal(all['/keep'].target, 'http://h:3')
  t.equal(all['/keep'].last_activity, new Date(keepActivity).toISOString(), 'an existing route keeps its newer activity')
  t.equal(all['/user/new'].last_activity, '2026-01-02T03:04:05.678Z', 'given activity is kept for new routes')
  t.same(Object.keys(all['/keep']), ['user', 'target', 'last_activity'])
})

t.test('body size limit: 413, table unchanged', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  const huge = JSON.stringify({ target: 'http://h:1', pad: 'x'.repeat(1024 * 1024 + 10) })
  const declared = await fetch(`${proxy.apiUrl}/api/routes/big`, { method: 'POST', headers: AUTH, body: huge })
  t.equal(declared.status, 413)
  t.match(await declared.text(), /^Body too large: limit is 1048576 bytes$/)
  // Chunked, no Content-Length: the limit applies while reading.
  const status = await new Promise<number>((resolve, reject) => {
    const url = new URL(`${proxy.apiUrl}/api/routes/big2`)
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: AUTH }, res => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    for (let i = 0; i < 20; i++) req.write('x'.repeat(64 * 1024))
    req.end()
  })
  t.equal(status, 413)
  t.equal(proxy.table.size, 0)
})

t.test('no token configured: API open (CHP behaviour)', async t => {
  const proxy = await startTestProxy([], {})
  t.teardown(() => proxy.close())
  const res = await fetch(`${proxy.apiUrl}/api/routes`)
  t.equal(res.status, 200)
  await res.text()
})

t.test('/metrics on the API port needs no token', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  const res = await fetch(`${proxy.apiUrl}/metrics`)
  t.equal(res.status, 200)
  const text = await res.text()
  t.match(text, /fleethub_proxy_routes 0/)
  t.match(text, /fleethub_proxy_open_websockets 0/)
  t.match(text, /fleethub_proxy_nodejs_eventloop_lag_p99_seconds/)
})
