/**
 * sim-servers: start, poll and stop virtual single-user servers through the control API, each
 * answering on its own 127.x address after the configured start time, against a small real hub
 * endpoint (the servers' version check and activity reports go to it); the token, the body checks
 * and a stop during a start.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import t from 'tap'
import { createSimServers } from '../src/sim-servers.js'

const TOKEN = 'sim-test-token'

async function fakeHub(t: Tap.Test): Promise<{ apiUrl: string; seen: string[] }> {
  const seen: string[] = []
  const hub = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    req.resume()
    res.writeHead(200, { 'x-jupyterhub-version': '3.0.0', 'content-type': 'application/json' }).end('{}')
  })
  await new Promise<void>(resolve => hub.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { hub.close(() => resolve()); hub.closeAllConnections() }))
  return { apiUrl: `http://127.0.0.1:${(hub.address() as AddressInfo).port}/hub/api`, seen }
}

type Tap = typeof t
declare namespace Tap { type Test = typeof t }

const envFor = (user: string, apiUrl: string) => ({
  JUPYTERHUB_USER: user, JUPYTERHUB_API_URL: apiUrl, JUPYTERHUB_API_TOKEN: `tok-${user}`, JUPYTERHUB_CLIENT_ID: `jupyterhub-user-${user}`,
  JUPYTERHUB_OAUTH_CALLBACK_URL: `/user/${user}/oauth_callback`, JUPYTERHUB_SERVICE_PREFIX: `/user/${user}/`,
  // what JupyterHub's get_env() sends before an address exists; sim-servers binds its own
  JUPYTERHUB_SERVICE_URL: `http://127.0.0.1:0/user/${user}/`, JUPYTERHUB_ACTIVITY_INTERVAL: '0', PATH: '/usr/bin',
})

t.test('start, poll and stop virtual servers through the control API', async t => {
  const { apiUrl, seen } = await fakeHub(t)
  const sim = await createSimServers({ token: TOKEN, startTime: { min: 300, max: 300 }, maxServers: 3, log: pino({ level: 'silent' }), extra: { hubRetryDelaysMs: [100] } })
  t.teardown(() => sim.close())
  const call = async (method: string, path: string, body?: unknown, token: string | null = TOKEN) => {
    const res = await fetch(`${sim.url}${path}`, {
      method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      headers: { ...(token ? { authorization: `token ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : undefined }
  }
  t.equal((await call('GET', '/health', undefined, null)).status, 200, 'health needs no token')
  t.match(await call('GET', '/servers', undefined, null), { status: 403, body: { status: 403, code: 'SIM_SERVERS_FORBIDDEN' } })
  t.match(await call('GET', '/servers', undefined, 'wrong'), { status: 403 })
  t.match(await call('POST', '/servers', { env: { JUPYTERHUB_USER: 5 } }), { status: 400, body: { code: 'SIM_SERVERS_BAD_ENV' } })
  t.match(await call('POST', '/servers', '{not json'), { status: 400, body: { code: 'SIM_SERVERS_BAD_JSON' } })
  t.match(await call('POST', '/servers', { env: { JUPYTERHUB_USER: 'x' } }), { status: 400, body: { code: 'SINGLEUSER_CONFIG_INVALID' } }, 'an incomplete environment is refused, with the server\'s own reason')
  t.match(await call('POST', '/servers', { env: envFor('a', apiUrl), id: 'NOT-HEX' }), { status: 400, body: { code: 'SIM_SERVERS_BAD_ID' } })
  t.match(await call('POST', '/servers', 'x'.repeat(300 * 1024)), { status: 413 })

  const t0 = performance.now()
  const [alice, bob] = await Promise.all([call('POST', '/servers', { env: envFor('alice', apiUrl) }), call('POST', '/servers', { env: envFor('bob', apiUrl), id: '00000000000000b0' })])
  t.ok(performance.now() - t0 >= 290, 'each start waited the configured start time')
  t.match(alice, { status: 201, body: { ip: /^127\.(1[2-9]\d)\.\d+\.\d+$/, port: 8888 } })
  t.equal(bob.body.id, '00000000000000b0', 'the id the spawner chose')
  t.not(alice.body.ip, bob.body.ip, 'each server has its own address')
  t.ok(seen.includes('GET /hub/api'), 'the servers checked the hub version before answering 201')
  t.match(await call('POST', '/servers', { env: envFor('bob', apiUrl), id: '00000000000000b0' }), { status: 409, body: { code: 'SIM_SERVERS_EXISTS' } })

  // the virtual server answers on its own address: anonymous -> the hub's OAuth flow
  const page = await fetch(`http://${alice.body.ip}:8888/user/alice/`, { redirect: 'manual' })
  t.equal(page.status, 302)
  t.match(page.headers.get('location'), /^\/hub\/api\/oauth2\/authorize\?client_id=jupyterhub-user-alice/)
  t.equal((await fetch(`http://${alice.body.ip}:8888/user/bob/`, { redirect: 'manual' })).status, 404, "alice's server does not serve bob's prefix")

  t.match(await call('GET', `/servers/${alice.body.id}`), { status: 200, body: { state: 'running', user: 'alice', ip: alice.body.ip } })
  const list = await call('GET', '/servers')
  t.same(list.body.servers.map((s: { user: string }) => s.user).sort(), ['alice', 'bob'])
  t.match(await call('GET', '/stats'), { body: { running: 2, starting: 0, started: 2, stopped: 0, users: 2 } })

  t.equal((await call('DELETE', `/servers/${alice.body.id}`)).status, 204)
  t.equal((await call('GET', `/servers/${alice.body.id}`)).status, 404, 'a stopped server polls as gone')
  let refused = false
  try { await fetch(`http://${alice.body.ip}:8888/user/alice/`, { redirect: 'manual' }) } catch { refused = true }
  t.ok(refused, 'and no longer listens')
  t.equal((await call('DELETE', `/servers/${alice.body.id}`)).status, 404)

  // a stop during the start time cancels the start
  const starting = call('POST', '/servers', { env: envFor('carol', apiUrl), id: '00000000000000c0' })
  await new Promise(r => setTimeout(r, 50))
  t.match(await call('GET', '/servers/00000000000000c0'), { status: 200, body: { state: 'starting', ip: null } })
  t.equal((await call('DELETE', '/servers/00000000000000c0')).status, 204)
  t.match(await starting, { status: 409, body: { code: 'SIM_SERVERS_CANCELLED' } })

  // bounded: maxServers 3
  const full = await Promise.all(['d', 'e', 'f'].map(u => call('POST', '/servers', { env: envFor(u, apiUrl) })))
  t.same(full.map(r => r.status).sort(), [201, 201, 429], 'beside bob, the third concurrent server is refused with 429')
  t.match(await call('GET', '/stats'), { body: { running: 3, starting: 0, started: 4, stopped: 2, failed: 1, users: 4 } })
  await t.rejects(createSimServers({ host: '0.0.0.0' }), /loopback only/)
})
