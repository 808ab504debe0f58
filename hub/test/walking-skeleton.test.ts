/**
 * The walking skeleton end to end, over real HTTP, through the real proxy child process, with
 * the local spawner running the built-in single-user server as its own process.
 */
import t from 'tap'
import { WebSocket } from 'ws'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'
import { waitFor } from '../../test/helpers/wait.js'

async function progressEvents(b: Browser, user: string): Promise<Array<Record<string, unknown>>> {
  const res = await b.fetch(`/hub/api/users/${user}/server/progress`, { headers: { referer: `${b.base}/hub/spawn-pending/${user}` } })
  if (res.status !== 200) throw new Error(`progress: ${res.status} ${await res.text()}`)
  const text = await res.text()
  return text.split('\n\n').filter(chunk => chunk.startsWith('data: ')).map(chunk => JSON.parse(chunk.slice(6)) as Record<string, unknown>)
}


t.test('a user starts, uses, stops and restarts their own server through the proxy', async t => {
  const hub = await startTestHub(t)
  const alice = new Browser(hub.publicUrl)
  await alice.login('alice', DEV_PASSWORD)

  const home = await alice.go('/hub/home')
  t.match(home.body, /id="start"[^>]*>Start my server/, 'home offers to start')

  // GET /hub/spawn, as JupyterHub clients do, lands on the progress page or straight on the server
  const spawn = await alice.fetch('/hub/spawn')
  t.equal(spawn.status, 302)
  t.match(spawn.headers.get('location'), /^\/hub\/spawn-pending\/alice$|^\/user\/alice\/$/)

  const events = await progressEvents(alice, 'alice')
  const last = events[events.length - 1]!
  t.equal(last.ready, true, 'the stream ends with ready')
  t.equal(last.url, '/user/alice/')
  t.equal(last.progress, 100)
  if (events.length > 1) t.same(events[0], { progress: 0, message: 'Server requested' }, 'first event is Server requested')

  // the route is in the proxy, pointing at alice's own process
  const routes = await hub.proxyClient.getRoutes()
  t.match(routes['/user/alice'], { user: 'alice', server_name: '', jupyterhub: true })
  const row = await hub.db.selectFrom('servers').selectAll().executeTakeFirstOrThrow()
  t.equal(row.state, 'running')
  t.equal(routes['/user/alice']!.target, row.url)
  const pid = Number((row.spawner_state as { pid?: number }).pid)
  t.ok(pid > 0 && pid !== process.pid, 'a separate process')

  // the page, through the proxy, after the OAuth dance with the server
  const page = await alice.go('/user/alice/')
  t.equal(page.status, 200)
  t.match(page.body, /alice/, 'the page says whose server it is')
  t.ok(page.hops.some(h => h.url.includes('/hub/api/oauth2/authorize')), 'went through the hub OAuth provider')
  t.ok(page.hops.some(h => h.url.includes('/user/alice/oauth_callback')), 'and back through the callback')

  // a websocket through the proxy reaches the same process and echoes
  const cookieHeader = ['jupyterhub-user-alice', 'jupyterhub-session-id'].map(n => `${n}=${alice.cookie(n)}`).join('; ')
  const ws = new WebSocket(`${hub.publicUrl.replace('http', 'ws')}/user/alice/api/kernels/k1/channels`, { headers: { cookie: cookieHeader } })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const echo = new Promise<string>(resolve => ws.once('message', d => resolve(String(d))))
  ws.send('ping through the proxy')
  t.equal(await echo, 'ping through the proxy', 'websocket echo')
  ws.close()

  // its activity reaches the hub
  await waitFor('activity from the server', async () => {
    const s = await hub.db.selectFrom('users').select('last_activity').where('name', '=', 'alice').executeTakeFirst()
    return s?.last_activity ?? undefined
  })
  t.pass('the server reported activity')

  // stop it from the home page
  const stopped = await alice.submit('/hub/home', '/hub/stop', {})
  t.equal(stopped.status, 200)
  t.match(stopped.body, /not running/)
  const after = await hub.proxyClient.getRoutes()
  t.equal(after['/user/alice'], undefined, 'route removed')
  t.throws(() => process.kill(pid, 0), 'the process is gone')
  const notRunning = await alice.go('/user/alice/')
  t.equal(notRunning.status, 424, "the hub's not-running page")
  t.match(notRunning.body, /not running/)
  t.match(notRunning.body, /Start my server/)

  // and start again
  await alice.fetch('/hub/spawn')
  const again = await progressEvents(alice, 'alice')
  t.equal(again[again.length - 1]!.ready, true, 'ready again')
  const page2 = await alice.go('/user/alice/')
  t.equal(page2.status, 200)
  t.match(page2.body, /alice/)
})

t.test('two users never reach each other\'s servers', async t => {
  const hub = await startTestHub(t)
  const alice = new Browser(hub.publicUrl)
  const bob = new Browser(hub.publicUrl)
  await alice.login('alice', DEV_PASSWORD)
  await bob.login('bob', DEV_PASSWORD)
  await alice.fetch('/hub/spawn')
  await bob.fetch('/hub/spawn')
  t.equal((await progressEvents(alice, 'alice')).pop()!.ready, true)
  t.equal((await progressEvents(bob, 'bob')).pop()!.ready, true)
  const routes = await hub.proxyClient.getRoutes()
  t.not(routes['/user/alice']!.target, routes['/user/bob']!.target, 'different processes')

  t.equal((await alice.go('/user/alice/')).status, 200)
  const cross = await bob.go('/user/alice/')
  t.not(cross.status, 200, "bob does not get alice's page")
  t.notMatch(cross.body, /server of <strong>alice<\/strong>|fleethub server of alice/i)
  t.equal(cross.status, 403)

  // bob's progress stream and stop API for alice are refused
  const prog = await bob.fetch('/hub/api/users/alice/server/progress', { headers: { referer: `${hub.publicUrl}/hub/home` } })
  t.equal(prog.status, 403)
  const del = await bob.fetch('/hub/api/users/alice/server', { method: 'DELETE', headers: { referer: `${hub.publicUrl}/hub/home` } })
  t.equal(del.status, 403)
  const still = await hub.proxyClient.getRoutes()
  t.ok(still['/user/alice'], "alice's server is still routed")

  // a token from alice's server cannot be used for bob's
  const aliceCookie = alice.cookie('jupyterhub-user-alice')
  t.ok(aliceCookie)
  const res = await fetch(`${hub.publicUrl}/user/bob/`, { redirect: 'manual', headers: { cookie: `jupyterhub-user-bob=${aliceCookie}` } })
  t.not(res.status, 200, "alice's server cookie is worthless on bob's server")
})
