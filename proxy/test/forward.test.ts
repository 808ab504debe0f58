import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import type { ServerResponse } from 'node:http'
import { addRoute, eventually, openWs, startTestProxy, startUpstream, wsRoundTrip } from './fixtures.js'

interface Echo { name: string, url: string, method: string, headers: Record<string, string>, body: string }

t.test('HTTP: full path and query forwarded, Host kept, x-forwarded-* added', async t => {
  const up = await startUpstream('alice')
  t.teardown(() => up.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  t.equal(await addRoute(proxy, '/user/alice', { target: up.url }), 201)
  const res = await fetch(`${proxy.url}/user/alice/api/contents?x=1&y=%2F`, { method: 'POST', body: 'hello' })
  t.equal(res.status, 200)
  const echo = await res.json() as Echo
  t.equal(echo.name, 'alice')
  t.equal(echo.url, '/user/alice/api/contents?x=1&y=%2F')
  t.equal(echo.body, 'hello')
  t.equal(echo.headers.host, `127.0.0.1:${proxy.port}`)
  t.match(echo.headers['x-forwarded-for'], /127\.0\.0\.1/)
  t.equal(echo.headers['x-forwarded-port'], String(proxy.port))
  t.equal(echo.headers['x-forwarded-proto'], 'http')
  t.equal(echo.headers['x-forwarded-host'], `127.0.0.1:${proxy.port}`)
})

t.test('--no-x-forward and --no-include-prefix', async t => {
  const up = await startUpstream('alice')
  t.teardown(() => up.close())
  const proxy = await startTestProxy(['--no-x-forward', '--no-include-prefix'])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: up.url })
  const echo = await (await fetch(`${proxy.url}/user/alice/lab/tree?q=1`)).json() as Echo
  t.equal(echo.url, '/lab/tree?q=1')
  t.equal(echo.headers['x-forwarded-for'], undefined)
  const bare = await (await fetch(`${proxy.url}/user/alice`)).json() as Echo
  t.equal(bare.url, '/')
})

t.test('alice and bob never cross', async t => {
  const alice = await startUpstream('alice')
  t.teardown(() => alice.close())
  const bob = await startUpstream('bob')
  t.teardown(() => bob.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: alice.url })
  await addRoute(proxy, '/user/bob/', { target: bob.url })
  const paths = ['/user/alice', '/user/alice/', '/user/alice/x', '/user/bob', '/user/bob/api/kernels', '/user/alice/../bob/x', '/user/bob/%2E%2E/alice/x']
  const want = ['alice', 'alice', 'alice', 'bob', 'bob', 'bob', 'alice']
  // Concurrently, so that keep-alive upstream sockets are in use by both at once.
  const results = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const path = paths[i % paths.length]
    const res = await new Promise<{ status: number, body: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: proxy.port, path }, r => {
        let body = ''
        r.on('data', c => { body += c })
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }))
      }).on('error', reject)
    })
    return { path, want: want[i % paths.length], got: (JSON.parse(res.body) as Echo).name }
  }))
  t.same(results.filter(r => r.got !== r.want), [], 'every request reached its own server')
  const ws1 = await openWs(`${proxy.url.replace('http', 'ws')}/user/alice/api/kernels/1/channels`)
  t.teardown(() => ws1.terminate())
  const ws2 = await openWs(`${proxy.url.replace('http', 'ws')}/user/bob/terminals/websocket/1`)
  t.teardown(() => ws2.terminate())
  t.equal(await wsRoundTrip(ws1, 'hi'), 'alice:/user/alice/api/kernels/1/channels:hi')
  t.equal(await wsRoundTrip(ws2, 'yo'), 'bob:/user/bob/terminals/websocket/1:yo')
})

t.test('websockets: text and binary echo, closing either side closes the other', async t => {
  const up = await startUpstream('alice')
  t.teardown(() => up.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: up.url })
  const ws = await openWs(`${proxy.url.replace('http', 'ws')}/user/alice/ws`)
  t.equal(await wsRoundTrip(ws, 'one'), 'alice:/user/alice/ws:one')
  const binary = once(ws, 'message')
  ws.send(Buffer.from([1, 2, 3]))
  t.same([...(await binary)[0] as Buffer], [1, 2, 3])
  t.equal(proxy.stats().openWebsockets, 1)
  ws.close()
  await once(ws, 'close')
  t.ok(await eventually(() => proxy.stats().openWebsockets === 0), 'tunnel released after client close')

  const ws2 = await openWs(`${proxy.url.replace('http', 'ws')}/user/alice/ws`)
  const closed = once(ws2, 'close')
  await up.close()
  await closed
  t.ok(await eventually(() => proxy.stats().openWebsockets === 0), 'tunnel released after upstream close')
})

t.test('websocket errors: no route -> 404, upstream down -> 503', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await t.rejects(openWs(`${proxy.url.replace('http', 'ws')}/nowhere`), /unexpected response 404/)
  const dead = http.createServer()
  await new Promise<void>(resolve => dead.listen(0, '127.0.0.1', resolve))
  const deadPort = (dead.address() as AddressInfo).port
  await new Promise<void>(resolve => dead.close(() => resolve()))
  await addRoute(proxy, '/user/gone', { target: `http://127.0.0.1:${deadPort}` })
  await t.rejects(openWs(`${proxy.url.replace('http', 'ws')}/user/gone/ws`), /unexpected response 503/)
  t.ok(await eventually(() => proxy.stats().openWebsockets === 0))
})

t.test('SSE passes chunk by chunk', async t => {
  const up = await startUpstream('alice')
  t.teardown(() => up.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/hub', { target: up.url })
  const arrivals: number[] = []
  const started = Date.now()
  await new Promise<void>((resolve, reject) => {
    http.get(`${proxy.url}/hub/api/users/alice/server/progress/sse`, res => {
      t.equal(res.headers['content-type'], 'text/event-stream')
      res.on('data', () => arrivals.push(Date.now() - started))
      res.on('end', resolve)
    }).on('error', reject)
  })
  t.ok(arrivals.length >= 3, `three separate chunks (got ${arrivals.length})`)
  t.ok(arrivals[arrivals.length - 1] - arrivals[0] >= 150, 'spread over time, not buffered to the end')
})

t.test('errors: 404 no route, 503 upstream down, plain texts', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  const none = await fetch(`${proxy.url}/user/nobody`)
  t.equal(none.status, 404)
  t.equal(await none.text(), 'Not Found')
  await addRoute(proxy, '/user/down', { target: 'http://127.0.0.1:9' })
  const down = await fetch(`${proxy.url}/user/down/x`)
  t.equal(down.status, 503)
  t.equal(await down.text(), 'Service Unavailable')
  const bad = await fetch(`${proxy.url}/user/%E0%A4%A`)
  t.equal(bad.status, 400)
  await bad.text()
})

t.test('--proxy-timeout: an upstream that never answers gives 503', async t => {
  const up = await startUpstream('slow')
  t.teardown(() => up.close())
  const proxy = await startTestProxy(['--proxy-timeout', '300'])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/slow', { target: up.url })
  const res = await fetch(`${proxy.url}/user/slow/hang`)
  t.equal(res.status, 503)
  await res.text()
})

t.test('error target: original status, page body and content type, url param', async t => {
  const seen: Array<{ url: string, headers: http.IncomingHttpHeaders }> = []
  const hub = await startUpstream('hub', (req, res) => {
    if (!(req.url ?? '').startsWith('/hub/error/')) return false
    seen.push({ url: req.url ?? '', headers: req.headers })
    res.writeHead(200, { 'Content-Type': 'text/html', 'X-Other': 'dropped' })
    res.end(`<h1>error page for ${req.url}</h1>`)
    return true
  })
  t.teardown(() => hub.close())
  const proxy = await startTestProxy(['--error-target', `${hub.url}/hub/error`])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/probe/a', { target: 'http://127.0.0.1:9' })
  const res = await fetch(`${proxy.url}/probe/a/some/path?x=1`, { headers: { cookie: 'secret=1' } })
  t.equal(res.status, 503)
  t.equal(res.headers.get('content-type'), 'text/html')
  t.equal(res.headers.get('x-other'), null)
  t.equal(await res.text(), '<h1>error page for /hub/error/503?url=%2Fprobe%2Fa%2Fsome%2Fpath%3Fx%3D1</h1>')
  t.equal(seen[0].url, '/hub/error/503?url=%2Fprobe%2Fa%2Fsome%2Fpath%3Fx%3D1')
  t.equal(seen[0].headers.cookie, undefined, 'no cookies to the error target')
  const none = await fetch(`${proxy.url}/nothing/here`)
  t.equal(none.status, 404)
  t.equal(await none.text(), '<h1>error page for /hub/error/404?url=%2Fnothing%2Fhere</h1>')
  // Many errors in a row must not pile up sockets to the error target (CHP #557).
  for (let i = 0; i < 50; i++) await (await fetch(`${proxy.url}/nothing/${i}`)).text()
  t.ok(hub.sockets.size <= 8, `sockets to the error target stay pooled (${hub.sockets.size})`)
})

t.test('error target down: falls back to the plain text', async t => {
  const proxy = await startTestProxy(['--error-target', 'http://127.0.0.1:9/hub/error'])
  t.teardown(() => proxy.close())
  const res = await fetch(`${proxy.url}/x`)
  t.equal(res.status, 404)
  t.equal(await res.text(), 'Not Found')
})

t.test('default target and health check', async t => {
  const hub = await startUpstream('hub')
  t.teardown(() => hub.close())
  const alice = await startUpstream('alice')
  t.teardown(() => alice.close())
  const proxy = await startTestProxy(['--default-target', hub.url])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: alice.url })
  t.equal(((await (await fetch(`${proxy.url}/hub/login`)).json()) as Echo).name, 'hub')
  t.equal(((await (await fetch(`${proxy.url}/user/bob/`)).json()) as Echo).name, 'hub')
  t.equal(((await (await fetch(`${proxy.url}/user/alice/`)).json()) as Echo).name, 'alice')
  const health = await fetch(`${proxy.url}/_chp_healthz`)
  t.equal(health.status, 200)
  t.equal(health.headers.get('content-type'), 'application/json')
  t.same(await health.json(), { status: 'OK', bootId: proxy.bootId })
})

t.test('activity: 2xx updates last_activity, 3xx and errors do not, websocket client traffic does', async t => {
  const up = await startUpstream('alice')
  t.teardown(() => up.close())
  const proxy = await startTestProxy(['--ws-idle-timeout', '0'])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: up.url })
  const route = proxy.table.get('/user/alice')!
  route.lastActivity = 1
  await (await fetch(`${proxy.url}/user/alice/status/302`, { redirect: 'manual' })).text()
  await (await fetch(`${proxy.url}/user/alice/status/500`)).text()
  t.equal(proxy.table.get('/user/alice')!.lastActivity, 1, 'redirects and errors are not activity')
  const before = Date.now()
  await (await fetch(`${proxy.url}/user/alice/api/status`)).text()
  t.ok(proxy.table.get('/user/alice')!.lastActivity >= before, '2xx is activity')

  const ws = await openWs(`${proxy.url.replace('http', 'ws')}/user/alice/ws`)
  t.teardown(() => ws.terminate())
  await wsRoundTrip(ws, 'x')
  proxy.table.get('/user/alice')!.lastActivity = 1
  const sent = Date.now()
  await wsRoundTrip(ws, 'typing')
  const routes = await (await fetch(`${proxy.apiUrl}/api/routes`, { headers: { authorization: 'token test-token-0001' } })).json() as Record<string, { last_activity: string }>
  t.ok(Date.parse(routes['/user/alice'].last_activity) >= sent, 'websocket data from the client is activity, visible on the next GET')
})

t.test('--host-routing: the host is the first segment', async t => {
  const a = await startUpstream('a')
  t.teardown(() => a.close())
  const proxy = await startTestProxy(['--host-routing'])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/a.example.org', { target: a.url })
  const res = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: proxy.port, path: '/x', headers: { host: 'a.example.org:80' } }, r => {
      let body = ''
      r.on('data', c => { body += c })
      r.on('end', () => resolve(body))
    }).on('error', reject)
  })
  t.equal((JSON.parse(res) as Echo).name, 'a')
  t.equal(proxy.table.get('/a.example.org')!.data.host, 'a.example.org')
  const other = await fetch(`${proxy.url}/x`)
  t.equal(other.status, 404)
  await other.text()
})

t.test('the hub route has its own uncapped pool: held hub requests never queue other hub traffic; user routes keep the cap', async t => {
  const hub = await startUpstream('hub')
  t.teardown(() => hub.close())
  const alice = await startUpstream('alice')
  t.teardown(() => alice.close())
  const proxy = await startTestProxy(['--max-upstream-sockets', '2'])
  t.teardown(() => proxy.close())
  t.equal(await addRoute(proxy, '/', { target: hub.url, hub: true }), 201)
  t.equal(await addRoute(proxy, '/user/alice', { target: alice.url }), 201)
  // three requests the upstream holds (like stops waiting for their pods), more than the cap of 2
  const held = new AbortController()
  t.teardown(() => held.abort())
  const hold = (path: string) => { void fetch(`${proxy.url}${path}`, { signal: held.signal }).catch(() => undefined) }
  for (let i = 0; i < 3; i++) hold(`/hub/api/hang/${i}`)
  t.ok(await eventually(() => hub.sockets.size >= 3), 'all three held hub requests reached the hub (no cap)')
  const t0 = performance.now()
  const quick = await fetch(`${proxy.url}/hub/logout`, { signal: AbortSignal.timeout(3000) })
  t.equal(quick.status, 200, 'a quick hub request is answered while three are held')
  t.ok(performance.now() - t0 < 2000)
  await quick.arrayBuffer()
  // a user route still has the cap: two held requests fill it, a third waits
  for (let i = 0; i < 2; i++) hold(`/user/alice/hang/${i}`)
  t.ok(await eventually(() => alice.sockets.size >= 2))
  const queued = await fetch(`${proxy.url}/user/alice/api/status`, { signal: AbortSignal.timeout(500) }).then(() => 'answered', () => 'still queued')
  t.equal(queued, 'still queued', 'the third request to alice waits for a free socket')
  t.equal(alice.sockets.size, 2, 'and no third socket was opened to her server')
})

t.test('hub traffic spreads over every kept-alive hub socket, so several hub processes behind one port share it', async t => {
  // Each connection the hub accepts is one hub process's (node:cluster hands connections out; a
  // Service balances connections): the proxy's choice of socket is what spreads the requests.
  const perSocket = new Map<Socket, number>()
  const held: ServerResponse[] = []
  const hub = await startUpstream('hub', (req, res) => {
    perSocket.set(req.socket, (perSocket.get(req.socket) ?? 0) + 1)
    if (!req.url?.includes('/hold')) return false
    held.push(res)
    return true
  })
  t.teardown(() => hub.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  t.equal(await addRoute(proxy, '/', { target: hub.url, hub: true }), 201)
  // a burst (a class arriving) opens four sockets to the hub, which stay open once answered
  const burst = Array.from({ length: 4 }, (_, i) => fetch(`${proxy.url}/hub/api/hold/${i}`).then(r => r.arrayBuffer()))
  t.ok(await eventually(() => held.length === 4), 'four requests held at once: four sockets')
  for (const res of held) res.end('{}')
  await Promise.all(burst)
  t.equal(hub.sockets.size, 4, 'kept alive')
  perSocket.clear()
  // then steady traffic, one request at a time (students working): reused last-in-first-out,
  // every one of them would go to the socket used last, that is to one hub process
  for (let i = 0; i < 40; i++) await fetch(`${proxy.url}/hub/api/user`).then(r => r.arrayBuffer())
  const counts = [...perSocket.values()].sort((a, b) => b - a)
  t.equal(counts.length, 4, `every kept socket carried requests (${JSON.stringify(counts)})`)
  t.ok(counts[0]! <= 12, 'none carried much more than its share of 10')
})

t.test('idle sockets to the hub outlive those to user servers (--hub-free-socket-timeout)', async t => {
  const hub = await startUpstream('hub')
  t.teardown(() => hub.close())
  const alice = await startUpstream('alice')
  t.teardown(() => alice.close())
  const proxy = await startTestProxy(['--upstream-free-socket-timeout', '150', '--hub-free-socket-timeout', '5000'])
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/', { target: hub.url, hub: true })
  await addRoute(proxy, '/user/alice', { target: alice.url })
  let hubConnections = 0, aliceConnections = 0
  hub.server.on('connection', () => { hubConnections++ })
  alice.server.on('connection', () => { aliceConnections++ })
  for (let round = 0; round < 2; round++) {
    t.equal((await fetch(`${proxy.url}/hub/home`)).status, 200)
    t.equal((await fetch(`${proxy.url}/user/alice/api/status`)).status, 200)
    await new Promise(r => setTimeout(r, 600)) // past the user servers' idle timeout, well within the hub's
  }
  t.equal(hubConnections, 1, 'the second hub request reused the idle socket')
  t.equal(aliceConnections, 2, 'the idle socket to the user server was closed after 150 ms')
  t.ok(await eventually(() => alice.sockets.size === 0), 'and none is left open to her server')
  t.equal(hub.sockets.size, 1, 'one idle socket to the hub stays open')
})

t.test('a kept-alive upstream socket closed as it is reused: GET is sent again on a fresh one, a body is not', async t => {
  // A raw upstream that answers the first request of each connection and resets the connection
  // when a second one arrives on it, unread (what a hub worker draining for a rolling restart
  // does to its idle keep-alive sockets, at the worst moment).
  let connections = 0
  const served: string[] = []
  const up = net.createServer(socket => {
    connections++
    let buffered = ''
    let answered = false
    socket.on('error', () => {})
    socket.on('data', chunk => {
      if (answered) return socket.resetAndDestroy()
      buffered += chunk.toString('latin1')
      const end = buffered.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buffered.slice(0, end)
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      if (buffered.length < end + 4 + length) return
      answered = true
      served.push(head.split('\r\n')[0]!)
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok')
    })
  })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  t.teardown(() => up.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: `http://127.0.0.1:${(up.address() as AddressInfo).port}` })

  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${proxy.url}/user/alice/page/${i}`)
    t.equal(res.status, 200, `GET ${i} answered`)
    await res.arrayBuffer()
  }
  t.same(served, ['GET /user/alice/page/0 HTTP/1.1', 'GET /user/alice/page/1 HTTP/1.1', 'GET /user/alice/page/2 HTTP/1.1'], 'each request reached the upstream once')
  t.equal(connections, 3, 'GETs 1 and 2 went again on fresh connections')

  const post = await fetch(`${proxy.url}/user/alice/api/contents`, { method: 'POST', body: 'x' })
  await post.arrayBuffer()
  t.equal(post.status, 503, 'a request with a body is not sent twice: the client is told')
  t.equal(served.length, 3, 'and the upstream never saw it')
})
