/**
 * Route-store mode (--routes-from-db): proxies load the routing table from Postgres and follow its
 * notifications; the table follows `servers` by trigger (migrations/0010). Real Postgres, real
 * proxies, a real upstream.
 */
import t from 'tap'
import { sql } from 'kysely'
import { createTestDatabase } from '../../test/helpers/db.js'
import { parseProxyConfig } from '../src/config.js'
import { createProxy, type RunningProxy } from '../src/server.js'
import { eventually, startUpstream, TOKEN } from './fixtures.js'
import type { Db } from '../../hub/src/db.js'

async function storeProxy(t: Tap.Test, url: string, flags: string[] = []): Promise<RunningProxy> {
  const config = parseProxyConfig(['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0',
    '--routes-from-db', '--activity-flush-interval', '50', ...flags], { CONFIGPROXY_AUTH_TOKEN: TOKEN })
  const proxy = await createProxy(config, { databaseUrl: url })
  t.teardown(() => proxy.close())
  return proxy
}

/** `n` users u<from>..u<from+n-1>, each with a running default server at `target`. */
async function runningServers(db: Db, from: number, n: number, target: string): Promise<void> {
  await sql`select fleethub_enable_route_store()`.execute(db)
  await sql`with u as (insert into users (name) select 'u' || i from generate_series(${from}::int, ${from + n - 1}::int) i returning id)
    insert into servers (user_id, name, state, url) select id, '', 'running', ${target} from u`.execute(db)
}

async function setState(db: Db, user: string, state: 'running' | 'stopped', url: string | null): Promise<void> {
  await sql`update servers set state = ${state}, url = ${url} where user_id = (select id from users where name = ${user})`.execute(db)
}

async function status(url: string): Promise<number> {
  const res = await fetch(url)
  await res.arrayBuffer()
  return res.status
}

t.test('a proxy started while 10,000 routes exist serves every one of them at once', async t => {
  const { db, url } = await createTestDatabase(t)
  const upstream = await startUpstream('u')
  t.teardown(() => upstream.close())
  // servers running before the route store was turned on: the first proxy turns it on and fills it
  await sql`with u as (insert into users (name) select 'u' || i from generate_series(1, 10000) i returning id)
    insert into servers (user_id, name, state, url) select id, '', 'running', ${upstream.url} from u`.execute(db)
  t.equal(Number((await sql<{ n: string }>`select count(*) as n from proxy_routes`.execute(db)).rows[0].n), 0, 'off by default: the REST mode pays nothing')
  await sql`update servers set state = 'stopped', url = null where user_id in (select id from users where name in ('u7', 'u8'))`.execute(db)
  const proxy = await storeProxy(t, url)
  t.equal(proxy.table.size, 9998, 'every running server has its route before the proxy listens')
  const missing = []
  for (let i = 1; i <= 10_000; i++) if (i !== 7 && i !== 8 && proxy.table.match(`/user/u${i}/lab`)?.path !== `/user/u${i}`) missing.push(i)
  t.same(missing, [], 'each of the 10,000 routes matches its own requests')
  const res = await fetch(`${proxy.url}/user/u9999/api/status`)
  t.equal(res.status, 200)
  t.match(await res.json(), { name: 'u', url: '/user/u9999/api/status' }, 'forwarded to the server with the path kept')
  t.equal(await status(`${proxy.url}/user/u7/`), 404, 'a stopped server has no route')
  t.equal(proxy.table.get('/user/u5')?.data.user, 'u5', 'the route data says whose it is, as the REST mode hub writes it')
})

t.test('two proxies follow starts, stops, renames and deletions', async t => {
  const { db, url } = await createTestDatabase(t)
  const upstream = await startUpstream('u')
  t.teardown(() => upstream.close())
  await runningServers(db, 1, 10, upstream.url)
  const a = await storeProxy(t, url)
  const b = await storeProxy(t, url)
  const both = (check: (p: RunningProxy) => boolean) => eventually(() => check(a) && check(b), 1000)

  await setState(db, 'u1', 'stopped', null)
  t.ok(await both(p => p.table.get('/user/u1') === undefined), 'a stop reaches both proxies within a second')
  await setState(db, 'u1', 'running', `${upstream.url}/`)
  t.ok(await both(p => p.table.get('/user/u1')?.target === `${upstream.url}/`), 'a start reaches both')
  await sql`update servers set state = 'stopping' where user_id = (select id from users where name = 'u2')`.execute(db)
  t.ok(await both(p => p.table.get('/user/u2') === undefined), 'a stopping server is routed no more')

  const alice = await db.insertInto('users').values({ name: 'alice' }).returning('id').executeTakeFirstOrThrow()
  await db.insertInto('servers').values({ user_id: alice.id, name: 'gpu box', state: 'running', url: upstream.url }).execute()
  t.ok(await both(p => p.table.get('/user/alice/gpu box') !== undefined), 'a named server routes at /user/<name>/<server>')
  await db.updateTable('users').set({ name: 'alicia' }).where('id', '=', alice.id).execute()
  t.ok(await both(p => p.table.get('/user/alicia/gpu box') !== undefined && p.table.get('/user/alice/gpu box') === undefined),
    'a rename moves the routes of running servers')
  await db.deleteFrom('users').where('id', '=', alice.id).execute()
  t.ok(await both(p => p.table.get('/user/alicia/gpu box') === undefined), 'a deleted user takes its routes along')

  // several changes in one transaction arrive in order, each once
  await db.transaction().execute(async trx => {
    await setState(trx as unknown as Db, 'u3', 'stopped', null)
    await setState(trx as unknown as Db, 'u3', 'running', `${upstream.url}/again`)
    await setState(trx as unknown as Db, 'u4', 'stopped', null)
  })
  t.ok(await both(p => p.table.get('/user/u3')?.target === `${upstream.url}/again` && p.table.get('/user/u4') === undefined), 'a transaction lands whole')
  const version = Number((await sql<{ v: string }>`select last_value as v from proxy_routes_version`.execute(db)).rows[0].v)
  t.ok(await both(p => p.store!.version === version), 'both proxies account for every number the database handed out')
  t.equal(a.store!.stats().reloads, 1, 'no reload: every notification arrived in sequence')
  const metrics = await (await fetch(`${a.apiUrl}/metrics`)).text()
  t.match(metrics, /^fleethub_proxy_route_store_connected 1$/m, 'the metrics say it follows the database')
  t.match(metrics, /^fleethub_proxy_route_store_reloads 1$/m, 'and that it loaded the table once')

  const res = await fetch(`${a.apiUrl}/api/routes/user/u5`, { method: 'DELETE', headers: { authorization: `token ${TOKEN}` } })
  t.equal(res.status, 409, 'the REST API does not write in route-store mode')
  t.match(await res.text(), /database/, 'and says why')
  const got = await fetch(`${a.apiUrl}/api/routes`, { headers: { authorization: `token ${TOKEN}` } })
  t.ok(Object.keys(await got.json() as object).includes('/user/u5'), 'reading works as in CHP')
})

t.test('a lost notification is detected and repaired', async t => {
  const { db, url } = await createTestDatabase(t)
  const upstream = await startUpstream('u')
  t.teardown(() => upstream.close())
  await runningServers(db, 1, 5, upstream.url)
  const proxy = await storeProxy(t, url)
  const store = proxy.store!

  // the listening connection drops, and changes happen while it is down
  store.dropListener()
  await setState(db, 'u1', 'stopped', null)
  await runningServers(db, 100, 3, upstream.url)
  t.ok(await eventually(() => proxy.table.get('/user/u1') === undefined && proxy.table.get('/user/u102') !== undefined, 5000),
    'after reconnecting the proxy reloads and has what changed meanwhile')
  t.ok(store.stats().connected, 'listening again')

  // a change whose notification never comes (the connection stayed up) and nothing after it: the poll finds it
  await sql`select nextval('proxy_routes_version')`.execute(db)
  await sql`delete from proxy_routes where path = '/user/u2'`.execute(db)
  t.ok(await eventually(() => proxy.table.get('/user/u2') === undefined, 5000), 'the sequence poll notices the missed change')

  // a hole in the numbers (a notification lost on the way) that stays open reloads the table
  const reloads = store.stats().reloads
  await sql`select nextval('proxy_routes_version')`.execute(db)
  await sql`delete from proxy_routes where path = '/user/u4'`.execute(db)
  await setState(db, 'u3', 'stopped', null)
  t.ok(await eventually(() => proxy.table.get('/user/u3') === undefined, 1000), 'the change after the hole is applied at once')
  t.ok(await eventually(() => store.stats().reloads > reloads && proxy.table.get('/user/u4') === undefined, 5000), 'the hole reloads the table')
})

t.test('the safety net puts the table back to the running servers', async t => {
  const { db, url } = await createTestDatabase(t)
  await runningServers(db, 1, 5, 'http://127.0.0.1:1')
  // drift, as a bug or a manual edit would make it
  await sql`delete from proxy_routes where path = '/user/u1'`.execute(db)
  await sql`insert into proxy_routes (path, server_id, user_id, target, data, version) values ('/user/ghost', -1, -1, 'http://x', '{}', 0)`.execute(db)
  const proxy = await storeProxy(t, url)
  t.ok(proxy.table.get('/user/ghost'), 'the proxy serves what the table says')
  const { rows } = await sql<{ n: number }>`select fleethub_reconcile_routes() as n`.execute(db)
  t.equal(rows[0].n, 2, 'one route added, one removed')
  t.ok(await eventually(() => proxy.table.get('/user/ghost') === undefined && proxy.table.get('/user/u1') !== undefined, 2000), 'the proxies reload')
  const again = await sql<{ n: number }>`select fleethub_reconcile_routes() as n`.execute(db)
  t.equal(again.rows[0].n, 0, 'nothing to do the second time')
})

t.test('activity through either proxy reaches servers and users in the database', async t => {
  const { db, url } = await createTestDatabase(t)
  const upstream = await startUpstream('u')
  t.teardown(() => upstream.close())
  await runningServers(db, 1, 3, upstream.url)
  await sql`update servers set last_activity = now() - interval '1 hour'`.execute(db)
  await sql`update users set last_activity = now() - interval '1 hour'`.execute(db)
  const a = await storeProxy(t, url)
  const b = await storeProxy(t, url)
  const lastActivity = async (name: string) => (await sql<{ s: Date, u: Date }>`select s.last_activity as s, u.last_activity as u
    from servers s join users u on u.id = s.user_id where u.name = ${name}`.execute(db)).rows[0]
  const before = Date.now()
  await new Promise(r => setTimeout(r, 200))
  t.ok((await lastActivity('u1')).s.getTime() < before - 3_000_000, 'loading routes is not activity')
  t.equal(await status(`${a.url}/user/u1/x`), 200)
  t.equal(await status(`${b.url}/user/u2/x`), 200)
  t.ok(await eventually(async () => {
    const [u1, u2] = [await lastActivity('u1'), await lastActivity('u2')]
    return u1.s.getTime() >= before && u1.u.getTime() >= before && u2.s.getTime() >= before && u2.u.getTime() >= before
  }, 3000), 'the server and the user were active, through either proxy')
  t.ok((await lastActivity('u3')).s.getTime() < before - 3_000_000, 'a server nobody used stays idle')
  const flushes = a.store!.stats().activityFlushes
  await new Promise(r => setTimeout(r, 300))
  t.equal(a.store!.stats().activityFlushes, flushes, 'no traffic, no writes')
  t.equal(await status(`${a.url}/user/u1/x`), 200)
  await new Promise(r => setTimeout(r, 300))
  t.equal(a.store!.stats().activityFlushes, flushes, 'a route in steady use is not written again within the resolution (60 s)')
  const c = await storeProxy(t, url, ['--activity-resolution', '0'])
  t.equal(await status(`${c.url}/user/u1/x`), 200)
  t.ok(await eventually(() => c.store!.stats().activityFlushes === 1, 2000), 'a new proxy writes a route\'s first activity at once')
  const before2 = (await lastActivity('u1')).s.getTime()
  await new Promise(r => setTimeout(r, 20))
  t.equal(await status(`${c.url}/user/u1/x`), 200)
  t.ok(await eventually(async () => (await lastActivity('u1')).s.getTime() > before2, 2000), 'with --activity-resolution 0 every flush writes what moved')
})
