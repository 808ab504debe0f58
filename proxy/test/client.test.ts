import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createProxyClient, ProxyClientError, routeApiPath } from '../src/client.js'
import { startTestProxy, TOKEN } from './fixtures.js'

t.test('routeApiPath escapes as CHP expects', async t => {
  t.equal(routeApiPath('/user/carol/bad name!'), '/api/routes/user/carol/bad%20name%21')
  t.equal(routeApiPath('/user/alice/'), '/api/routes/user/alice')
  t.equal(routeApiPath('/'), '/api/routes/')
  t.equal(routeApiPath('/user/a@b.c/srv(1)'), '/api/routes/user/a%40b.c/srv%281%29')
})

t.test('client against a real proxy', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  const client = createProxyClient({ apiUrl: proxy.apiUrl, authToken: TOKEN })
  t.teardown(() => client.close())
  t.equal(client.bootId, undefined)
  t.same(await client.getRoutes(), {})
  t.equal(client.bootId, proxy.bootId)
  await client.addRoute('/', 'http://127.0.0.1:8081', { hub: true, jupyterhub: true })
  await client.addRoute('/user/alice/', 'http://127.0.0.1:9001', { user: 'alice', server_name: '', jupyterhub: true })
  await client.addRoute('/user/carol/bad name!/', 'http://127.0.0.1:9002', { user: 'carol', server_name: 'bad name!', jupyterhub: true })
  const routes = await client.getRoutes()
  t.same(Object.keys(routes), ['/', '/user/alice', '/user/carol/bad name!'])
  t.match(routes['/user/alice'], { user: 'alice', server_name: '', jupyterhub: true, target: 'http://127.0.0.1:9001', last_activity: String })
  t.same(Object.keys(routes['/user/alice']), ['user', 'server_name', 'jupyterhub', 'target', 'last_activity'])
  proxy.table.get('/user/alice')!.lastActivity = Date.parse('2020-01-01T00:00:00Z')
  t.same(Object.keys(await client.getRoutes({ inactiveSince: new Date('2021-01-01T00:00:00Z') })), ['/user/alice'])
  t.equal(await client.deleteRoute('/user/carol/bad name!/'), true)
  t.equal(await client.deleteRoute('/user/carol/bad name!/'), false)
  await client.replaceRoutes({ '/user/x': { target: 'http://127.0.0.1:9003', user: 'x' } })
  t.same(Object.keys(await client.getRoutes()), ['/user/x'])
  const err = await client.addRoute('/user/y', 'not-a-url').catch((e: unknown) => e) as ProxyClientError
  t.ok(err instanceof ProxyClientError)
  t.equal(err.status, 400)
  t.equal(err.code, 'PROXY_CLIENT_HTTP')
})

t.test('bad token: ProxyClientError 403, no retry', async t => {
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  const client = createProxyClient({ apiUrl: proxy.apiUrl, authToken: 'wrong' })
  t.teardown(() => client.close())
  const started = Date.now()
  const err = await client.getRoutes().catch((e: unknown) => e) as ProxyClientError
  t.equal(err.status, 403)
  t.equal(err.code, 'PROXY_CLIENT_HTTP')
  t.ok(Date.now() - started < 1000, '4xx is not retried')
})

t.test('5xx is retried with a bounded backoff, then succeeds', async t => {
  let calls = 0
  const flaky = http.createServer((req, res) => {
    calls++
    req.resume()
    if (calls <= 2) { res.writeHead(502); res.end('bad gateway'); return }
    res.writeHead(200, { 'Content-Type': 'application/json', 'x-fleethub-proxy-boot': 'b1' })
    res.end('{}')
  })
  await new Promise<void>(resolve => flaky.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { flaky.closeAllConnections(); flaky.close() })
  const client = createProxyClient({ apiUrl: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, authToken: TOKEN })
  t.teardown(() => client.close())
  t.same(await client.getRoutes(), {})
  t.equal(calls, 3)
})

t.test('unreachable proxy: PROXY_CLIENT_UNREACHABLE within the timeout', async t => {
  const client = createProxyClient({ apiUrl: 'http://127.0.0.1:9', authToken: TOKEN, timeoutMs: 1500 })
  t.teardown(() => client.close())
  const started = Date.now()
  const err = await client.getRoutes().catch((e: unknown) => e) as ProxyClientError
  t.equal(err.code, 'PROXY_CLIENT_UNREACHABLE')
  t.equal(err.status, 0)
  t.ok(Date.now() - started < 3000, 'gives up within about the timeout')
})

t.test('timeout: an API that never answers', async t => {
  const silent = http.createServer(() => { /* never answers */ })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.closeAllConnections(); silent.close() })
  const client = createProxyClient({ apiUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, authToken: TOKEN, timeoutMs: 300 })
  t.teardown(() => client.close())
  const err = await client.getRoutes().catch((e: unknown) => e) as ProxyClientError
  t.equal(err.code, 'PROXY_CLIENT_TIMEOUT')
})

t.test('restart detection: a new proxy on the same API port fires onRestart once', async t => {
  const first = await startTestProxy()
  const apiPort = first.apiPort
  const client = createProxyClient({ apiUrl: first.apiUrl, authToken: TOKEN })
  t.teardown(() => client.close())
  const seen: string[] = []
  client.onRestart(id => seen.push(id))
  await client.addRoute('/user/alice', 'http://127.0.0.1:9001')
  await client.getRoutes()
  t.same(seen, [], 'no restart on the first contact')
  await first.close()
  const second = await startTestProxy(['--api-port', String(apiPort)])
  t.teardown(() => second.close())
  t.not(second.bootId, first.bootId)
  t.same(await client.getRoutes(), {}, 'the new proxy is empty')
  t.same(seen, [second.bootId])
  await client.getRoutes()
  t.same(seen, [second.bootId], 'fired once per change')
  t.equal(client.bootId, second.bootId)
})
