/**
 * Faults end with a clear message and the right status, never a 500 or a half-written row:
 * servers that cannot start, and a proxy that dies under the hub.
 */
import t from 'tap'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'

async function lastProgress(b: Browser, user: string): Promise<Record<string, unknown>> {
  const res = await b.fetch(`/hub/api/users/${user}/server/progress`, { headers: { referer: `${b.base}/hub/home` } })
  const chunks = (await res.text()).split('\n\n').filter(c => c.startsWith('data: '))
  return JSON.parse(chunks[chunks.length - 1]!.slice(6)) as Record<string, unknown>
}

const failing = [
  { name: 'the command does not exist', cmd: '/nonexistent/jupyterhub-singleuser', reason: /not found|ENOENT|does not exist/i },
  { name: 'the server exits at once', cmd: `${process.execPath} -e process.exit(3)`, reason: /exit|code 3/i },
  { name: 'the server never answers', cmd: `${process.execPath} -e setInterval(()=>{},1000)`, reason: /did not|within|timed out|listen/i },
]

for (const c of failing) {
  t.test(`a failed start leaves the server stopped with the reason shown: ${c.name}`, async t => {
    const hub = await startTestHub(t, { args: ['--singleuser-cmd', c.cmd, '--start-timeout', '3', '--http-timeout', '3'] })
    const b = new Browser(hub.publicUrl)
    await b.login('erin', DEV_PASSWORD)
    const spawn = await b.fetch('/hub/spawn')
    t.equal(spawn.status, 302)
    const last = await lastProgress(b, 'erin')
    t.equal(last.failed, true, 'the progress stream ends with failed')
    t.match(String(last.message), /^Spawn failed: /)
    t.match(String(last.message), c.reason)
    const row = await hub.db.selectFrom('servers').selectAll().executeTakeFirstOrThrow()
    t.equal(row.state, 'stopped', 'the row is back at stopped')
    t.match(row.last_error, c.reason, 'the reason is kept')
    t.same(await hub.db.selectFrom('api_tokens').select('id').where('server_id', '=', row.id).execute(), [], "the server's token is gone")
    t.same(await hub.db.selectFrom('oauth_clients').select('id').execute(), [], 'its OAuth client is gone')
    const routes = await hub.proxyClient.getRoutes()
    t.equal(routes['/user/erin'], undefined, 'no route')
    const home = await b.go('/hub/home')
    t.equal(home.status, 200)
    t.match(home.body, /The last start failed/)
    t.match(home.body, /Start my server/, 'and a way to retry')
    const notRunning = await b.go('/user/erin/')
    t.equal(notRunning.status, 424)
  })
}

t.test('a proxy that dies is restarted and gets every route back', async t => {
  const hub = await startTestHub(t)
  const users = ['p1', 'p2', 'p3']
  const browsers = await Promise.all(users.map(async u => {
    const b = new Browser(hub.publicUrl)
    await b.login(u, DEV_PASSWORD)
    await b.fetch('/hub/spawn')
    t.equal((await lastProgress(b, u)).ready, true, `${u} ready`)
    return b
  }))
  const before = await hub.proxyClient.getRoutes()
  t.equal(Object.keys(before).filter(k => k.startsWith('/user/')).length, 3)
  const oldPid = hub.proxy!.pid!
  const killedAt = Date.now()
  process.kill(oldPid, 'SIGKILL')
  let restoredMs = -1
  for (let i = 0; i < 200; i++) {
    await new Promise(r => setTimeout(r, 50))
    const routes = await hub.proxyClient.getRoutes().catch(() => undefined)
    if (routes && users.every(u => routes[`/user/${u}`]) && routes['/']) { restoredMs = Date.now() - killedAt; break }
  }
  t.ok(restoredMs >= 0, `every route back after the proxy was killed (${restoredMs} ms)`)
  t.not(hub.proxy!.pid, oldPid, 'a new proxy process')
  const page = await browsers[0]!.go('/user/p1/')
  t.equal(page.status, 200, 'users reach their servers again')
})

t.test('a pooled connection killed while checked out fails its query, not the process', async t => {
  const { createTestDatabase } = await import('../../test/helpers/db.js')
  const { sql } = await import('kysely')
  const { pool, db } = await createTestDatabase(t)
  const client = await pool.connect()
  const { rows: [me] } = await client.query<{ pid: number }>('select pg_backend_pid() as pid')
  // the backend goes away between two queries of a checked-out client (Postgres stopped, a
  // connection killed): pg emits 'error' on that client, which without a listener ends the process
  await sql`select pg_terminate_backend(${me!.pid})`.execute(db)
  await new Promise(r => setTimeout(r, 300))
  await t.rejects(client.query('select 1'), 'the next query on it fails')
  client.release(true)
  const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db)
  t.equal(rows[0]!.one, 1, 'the pool goes on with a fresh connection, and this process is alive')
})

t.test('a running server whose route is missing: each bounce back to the proxy waits longer, then a clear error', async t => {
  const { bounceDelayMs } = await import('../src/servers/not-running.routes.js')
  t.same([0, 1, 2, 3, 4, 5, 9].map(bounceDelayMs), [0, 250, 500, 1000, 2000, 4000, 4000])
  const hub = await startTestHub(t)
  const b = new Browser(hub.publicUrl)
  await b.login('rita', DEV_PASSWORD)
  await b.fetch('/hub/spawn')
  t.equal((await lastProgress(b, 'rita')).ready, true, 'ready')
  await hub.proxyClient.deleteRoute('/user/rita')
  // through the proxy, now without the route: the hub's default route answers
  const first = await b.fetch('/user/rita/tree', { redirect: 'manual' })
  t.equal(first.status, 302)
  t.match(first.headers.get('location'), /^\/hub\/user\/rita\/tree/)
  const t0 = performance.now()
  const again = await b.fetch('/hub/user/rita/tree?redirects=2', { redirect: 'manual' })
  const waited = performance.now() - t0
  t.equal(again.status, 302)
  t.match(again.headers.get('location'), /^\/user\/rita\/tree\?redirects=3$/, 'back to the proxy, the hop counted')
  t.ok(waited >= 450, `the third bounce waited ${Math.round(waited)} ms (500 asked)`)
  const fresh = performance.now()
  const firstBounce = await b.fetch('/hub/user/rita/tree', { redirect: 'manual' })
  t.equal(firstBounce.status, 302)
  t.ok(performance.now() - fresh < 250, 'the first bounce does not wait (the route may be there already)')
  const gone = await b.fetch('/hub/user/rita/tree?redirects=5', { redirect: 'manual' })
  t.equal(gone.status, 503, 'after the last hop: the route is missing, said so')
})
