/**
 * Leak regressions: the scenarios behind CHP #388/#434/#557 (OOM and ephemeral-port exhaustion at
 * 250-300 real users). Each runs against the proxy as a child process and asserts that its open file
 * descriptors (/proc/<pid>/fd) return to the baseline once the clients are gone.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { startChildProxy, type ChildProxy } from './child-proxy.js'
import { eventually, openWs, startUpstream, TOKEN, type Upstream } from './fixtures.js'

const FLAGS = ['--keep-alive-timeout', '300', '--upstream-free-socket-timeout', '300', '--ws-idle-timeout', '800']

async function setup(t: Tap.Test, extraFlags: string[] = []): Promise<{ proxy: ChildProxy, up: Upstream, baseline: number }> {
  const up = await startUpstream('alice', (req, res) => {
    const path = req.url ?? ''
    if (path.includes('/reset')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      res.write('partial')
      setTimeout(() => res.socket?.destroy(), 20)
      return true
    }
    if (path.includes('/drip')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      const timer = setInterval(() => res.write('x'), 20)
      res.on('close', () => clearInterval(timer))
      return true
    }
    return false
  })
  t.teardown(() => up.close())
  const proxy = await startChildProxy([...FLAGS, ...extraFlags])
  t.teardown(() => proxy.close())
  const res = await fetch(`${proxy.apiUrl}/api/routes/user/alice`, { method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: up.url }) })
  t.equal(res.status, 201)
  // Warm up every code path once (lazily opened fds), then let idle sockets expire.
  await (await fetch(`${proxy.url}/user/alice/warm`)).text()
  const ws = await openWs(`${proxy.url.replace('http', 'ws')}/user/alice/warm`)
  ws.close()
  await new Promise(resolve => setTimeout(resolve, 900))
  const baseline = proxy.fdCount()
  return { proxy, up, baseline }
}

async function backToBaseline(t: Tap.Test, proxy: ChildProxy, baseline: number, what: string): Promise<void> {
  const ok = await eventually(() => proxy.fdCount() <= baseline, 10_000)
  t.ok(ok, `${what}: socket fds back to baseline ${baseline} (now ${proxy.fdCount()})`)
  t.equal(await proxy.metric('fleethub_proxy_open_websockets'), 0, `${what}: no websocket tunnel left`)
  t.equal(await proxy.metric('fleethub_proxy_upstream_sockets'), 0, `${what}: no upstream socket left`)
}

t.test('abandoned websockets: clients that vanish (socket destroyed, no close frame)', async t => {
  // Idle timeout off: the close itself must free everything (and a slow box must not idle-close early).
  const { proxy, up, baseline } = await setup(t, ['--ws-idle-timeout', '0'])
  const sockets = await Promise.all(Array.from({ length: 40 }, () => openWs(`${proxy.url.replace('http', 'ws')}/user/alice/api/kernels/k/channels`)))
  t.ok(proxy.fdCount() >= baseline + 40, 'tunnels are open')
  t.ok(up.sockets.size >= 40, 'upstream sockets are open')
  for (const ws of sockets) ws.terminate()
  await backToBaseline(t, proxy, baseline, 'after 40 abandoned websockets')
  t.ok(await eventually(() => up.sockets.size === 0, 5000), 'upstream sockets closed too')
})

t.test('half-open silent websockets are closed by the idle timeout', async t => {
  const { proxy, up, baseline } = await setup(t)
  const sockets = await Promise.all(Array.from({ length: 20 }, () => openWs(`${proxy.url.replace('http', 'ws')}/user/alice/ws`)))
  // The clients stay connected but send nothing, like a laptop that went to sleep.
  t.ok(proxy.fdCount() >= baseline + 20)
  await backToBaseline(t, proxy, baseline, 'after the idle timeout')
  t.ok(await eventually(() => up.sockets.size === 0, 5000), 'upstream sockets closed too')
  for (const ws of sockets) ws.terminate()
})

t.test('clients that vanish mid-request (hung upstream, streaming upstream, half-sent body)', async t => {
  const { proxy, up, baseline } = await setup(t)
  const sockets: net.Socket[] = []
  const port = Number(new URL(proxy.url).port)
  for (let i = 0; i < 30; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    const kind = i % 3
    if (kind === 0) s.write('GET /user/alice/hang HTTP/1.1\r\nHost: x\r\n\r\n')
    else if (kind === 1) s.write('GET /user/alice/drip HTTP/1.1\r\nHost: x\r\n\r\n')
    else s.write('POST /user/alice/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial body')
    sockets.push(s)
  }
  t.ok(await eventually(() => up.sockets.size >= 20, 5000), 'requests reached the upstream')
  for (const s of sockets) s.destroy()
  await backToBaseline(t, proxy, baseline, 'after 30 vanished clients')
  t.ok(await eventually(() => up.sockets.size === 0, 5000), 'no upstream sockets left behind')
})

t.test('upstream that resets mid-response', async t => {
  const { proxy, baseline } = await setup(t)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 })
  t.teardown(() => agent.destroy())
  const results = await Promise.all(Array.from({ length: 40 }, () => new Promise<string>(resolve => {
    setTimeout(() => resolve('hung'), 5000).unref()
    http.get(`${proxy.url}/user/alice/reset`, { agent }, res => {
      res.on('data', () => {})
      res.on('end', () => resolve('end'))
      res.on('error', () => resolve('error'))
      res.on('aborted', () => resolve('aborted'))
    }).on('error', () => resolve('error'))
  })))
  t.equal(results.filter(r => r === 'end').length, 0, 'a truncated response is never reported as complete')
  t.equal(results.filter(r => r === 'hung').length, 0, 'and the client is told at once, not left waiting')
  agent.destroy()
  await backToBaseline(t, proxy, baseline, 'after 40 upstream resets')
})

t.test('stopped servers and the error target: 200 errors do not pile up sockets (CHP #557)', async t => {
  const hub = await startUpstream('hub', (req, res) => {
    if (!(req.url ?? '').startsWith('/hub/error/')) return false
    res.writeHead(200, { 'Content-Type': 'text/html' })
    res.end('<p>server not running</p>')
    return true
  })
  t.teardown(() => hub.close())
  const { proxy, baseline } = await setup(t, ['--error-target', `${hub.url}/hub/error`])
  await (await fetch(`${proxy.apiUrl}/api/routes/user/stopped`, { method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: '{"target":"http://127.0.0.1:9"}' })).text()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 })
  t.teardown(() => agent.destroy())
  const statuses = await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise<number>(resolve => {
    http.get(`${proxy.url}/user/stopped/api/kernels/${i}`, { agent }, res => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
      .on('error', () => resolve(0))
  })))
  t.equal(statuses.filter(s => s === 503).length, 200, 'every request answered 503 with the error page')
  t.ok(hub.sockets.size <= 32, `sockets to the error target are pooled and bounded (${hub.sockets.size})`)
  // Websocket attempts to the stopped server: 503 each, nothing kept.
  for (let i = 0; i < 20; i++) await openWs(`${proxy.url.replace('http', 'ws')}/user/stopped/ws`).then(ws => ws.terminate(), () => {})
  agent.destroy()
  await backToBaseline(t, proxy, baseline, 'after 200 errors and 20 failed websocket upgrades')
  t.ok(await eventually(() => hub.sockets.size === 0, 5000), 'error-target sockets expire')
})

t.test('websocket upgrade to an upstream that never answers, client gives up', async t => {
  const silent = net.createServer(s => { s.on('error', () => {}); s.resume() /* reads, never answers */ })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  const silentSockets = new Set<net.Socket>()
  silent.on('connection', s => { silentSockets.add(s); s.on('close', () => silentSockets.delete(s)) })
  t.teardown(() => { for (const s of silentSockets) s.destroy(); silent.close() })
  // Idle timeout off: the handshake itself must notice the client leaving.
  const { proxy, baseline } = await setup(t, ['--ws-idle-timeout', '0'])
  const port = (silent.address() as net.AddressInfo).port
  await (await fetch(`${proxy.apiUrl}/api/routes/user/silent`, { method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: `http://127.0.0.1:${port}` }) })).text()
  const clients: net.Socket[] = []
  for (let i = 0; i < 20; i++) {
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1')
    s.on('error', () => {})
    s.write('GET /user/silent/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    clients.push(s)
  }
  t.ok(await eventually(() => silentSockets.size === 20, 5000), 'upgrade requests reached the silent upstream')
  for (const s of clients) s.destroy()
  await backToBaseline(t, proxy, baseline, 'after 20 abandoned upgrades')
  t.ok(await eventually(() => silentSockets.size === 0, 5000), 'upgrade requests to the silent upstream were dropped')
})
