import t from 'tap'
import { addRoute, eventually, openWs, startTestProxy, startUpstream, TOKEN } from './fixtures.js'

async function metric(apiUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`${name} `))
  return line === undefined ? NaN : Number(line.split(' ')[1])
}

t.test('metrics count requests by class, latency, websockets, upstream sockets, routes', async t => {
  const up = await startUpstream('alice')
  t.teardown(() => up.close())
  const proxy = await startTestProxy()
  t.teardown(() => proxy.close())
  await addRoute(proxy, '/user/alice', { target: up.url })
  await addRoute(proxy, '/user/down', { target: 'http://127.0.0.1:9' })
  for (let i = 0; i < 3; i++) await (await fetch(`${proxy.url}/user/alice/ok`)).text()
  await (await fetch(`${proxy.url}/user/alice/status/302`, { redirect: 'manual' })).text()
  await (await fetch(`${proxy.url}/nowhere`)).text()
  await (await fetch(`${proxy.url}/user/down/x`)).text()
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_requests_total{class="2xx"}'), 3)
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_requests_total{class="3xx"}'), 1)
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_requests_total{class="4xx"}'), 1)
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_requests_total{class="5xx"}'), 1)
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_request_duration_seconds_count'), 6)
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_routes'), 2)
  t.ok(await metric(proxy.apiUrl, 'fleethub_proxy_upstream_sockets') >= 1, 'a pooled keep-alive socket to alice')
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_api_requests_total{status="201"}'), 2)
  const ws = await openWs(`${proxy.url.replace('http', 'ws')}/user/alice/ws`)
  t.teardown(() => ws.terminate())
  t.equal(await metric(proxy.apiUrl, 'fleethub_proxy_open_websockets'), 1)
  ws.terminate()
  t.ok(await eventually(async () => await metric(proxy.apiUrl, 'fleethub_proxy_open_websockets') === 0))
  t.ok(Number.isFinite(await metric(proxy.apiUrl, 'fleethub_proxy_nodejs_eventloop_lag_p99_seconds')), 'event-loop lag')
  t.ok(await metric(proxy.apiUrl, 'fleethub_proxy_process_open_fds') > 0, 'open fds')
})

t.test('--metrics-port: CHP-style separate listener, 404 elsewhere', async t => {
  const net = await import('node:net')
  const probe = net.createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as import('node:net').AddressInfo).port
  await new Promise<void>(resolve => probe.close(() => resolve()))
  const proxy = await startTestProxy(['--metrics-ip', '127.0.0.1', '--metrics-port', String(port)])
  t.teardown(() => proxy.close())
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(res.status, 200)
  t.match(await res.text(), /fleethub_proxy_routes 0/)
  const other = await fetch(`http://127.0.0.1:${port}/api/routes`, { headers: { authorization: `token ${TOKEN}` } })
  t.equal(other.status, 404)
  await other.text()
})
