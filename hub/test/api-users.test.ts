/**
 * The REST API contract (shared/spec/jupyterhub-contract.md §7) over real HTTP: shapes, paging,
 * filters, error statuses and messages, and a table of endpoint x caller for scope checks.
 */
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { sql } from 'kysely'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { ensureUser } from '../../hub/src/users/user.repository.js'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'

const PAGED = 'application/jupyterhub-pagination+json'
const SERVICE_TOKEN = 'service-token-0123456789abcdef'

t.test('REST API contract', async t => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-api-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const configFile = path.join(dir, 'config.json')
  await fs.writeFile(configFile, JSON.stringify({
    roles: [{ name: 'lister', scopes: ['list:users', 'read:users:name'] }],
    services: [{ name: 'svc', roles: ['lister'], tokenEnv: 'SVC_TOKEN' }],
  }))
  const hub = await startTestHub(t, { args: ['--admin-users', 'admin', '--allow-named-servers', '--named-server-limit-per-user', '2', '--config', configFile], env: { SVC_TOKEN: SERVICE_TOKEN } })
  const db = hub.db
  const admin = await ensureUser(db, 'admin', { admin: true })
  const alice = await ensureUser(db, 'alice')
  await ensureUser(db, 'bob')
  const adminToken = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  const aliceToken = (await createToken(db, { kind: 'api', userId: alice.id, scopes: ['inherit'] })).token
  const nameOnly = (await createToken(db, { kind: 'api', userId: alice.id, scopes: ['read:users:name!user=alice'] })).token
  const api = (p: string, o: { token?: string; method?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {}) =>
    fetch(`${hub.publicUrl}/hub/api${p}`, {
      method: o.method ?? 'GET',
      headers: { ...(o.token ? { authorization: `token ${o.token}` } : {}), ...o.headers },
      body: o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body)),
    })
  const json = async (res: Response) => res.json() as Promise<any>

  t.test('version and who am I', async t => {
    const v = await api('/')
    t.equal(v.status, 200)
    t.equal((await json(v)).version, '5.2.1', 'a JupyterHub API version Python parsers accept')
    t.equal(v.headers.get('x-jupyterhub-version'), '5.2.1')
    const anon = await api('/user')
    t.equal(anon.status, 403)
    t.same(await json(anon), { status: 403, message: 'Forbidden', code: 'HUB_FORBIDDEN' })
    t.equal((await api('/user', { token: 'not-a-token-at-all-xxxx' })).status, 403, 'a bad token is 403, never 401')
    const me = await json(await api('/user', { token: aliceToken }))
    t.match(me, { kind: 'user', name: 'alice', admin: false, groups: [], session_id: null })
    t.ok(me.scopes.includes('read:users!user=alice') && me.scopes.includes('servers!user=alice'), 'expanded self scopes')
    const narrow = await json(await api('/user', { token: nameOnly }))
    t.same(narrow.scopes, ['read:users:name!user=alice'])
    const bearer = await api('/user', { headers: { authorization: `Bearer ${aliceToken}` } })
    t.equal(bearer.status, 200, 'Authorization: bearer works too')
    const svc = await json(await api('/user', { token: SERVICE_TOKEN }))
    t.match(svc, { kind: 'service', name: 'svc' })
    t.ok(svc.scopes.includes('list:users'), 'service scopes from its configured role')
    const info = await api('/info', { token: adminToken })
    t.equal(info.status, 200)
    t.match(await json(info), { version: '5.2.1', spawner: { class: 'local' } })
    t.equal((await api('/info', { token: aliceToken })).status, 403)
  })

  t.test('batch create, read, update, delete users', async t => {
    const names = Array.from({ length: 120 }, (_, i) => `student${String(i).padStart(3, '0')}`)
    const created = await api('/users', { token: adminToken, method: 'POST', body: { usernames: names } })
    t.equal(created.status, 201)
    t.equal((await json(created)).length, 120)
    const again = await api('/users', { token: adminToken, method: 'POST', body: { usernames: names.slice(0, 2) } })
    t.equal(again.status, 409)
    t.equal((await json(again)).message, 'All 2 users already exist')
    const some = await json(await api('/users', { token: adminToken, method: 'POST', body: { usernames: ['student000', 'frank'] } }))
    t.same(some.map((u: any) => u.name), ['frank'], 'only the new ones come back')
    t.equal((await api('/users', { token: adminToken, method: 'POST', raw: '{not json' })).status, 400)
    t.equal((await json(await api('/users', { token: adminToken, method: 'POST', raw: '{not json' }))).message, 'Invalid JSON in body of request')
    t.equal((await json(await api('/users', { token: adminToken, method: 'POST', body: { usernames: [] } }))).message, 'Must specify at least one user to create')
    t.equal((await api('/users', { token: adminToken, method: 'POST', body: { usernames: ['Bad Name!'] } })).status, 400)

    const erin = await api('/users/erin', { token: adminToken, method: 'POST' })
    t.equal(erin.status, 201, 'bodiless POST creates')
    t.match(await json(erin), { name: 'erin', admin: false, groups: [], servers: {}, pending: null, last_activity: null })
    const dup = await api('/users/erin', { token: adminToken, method: 'POST' })
    t.equal(dup.status, 409)
    t.equal((await json(dup)).message, 'User erin already exists')
    const gina = await json(await api('/users/gina', { token: adminToken, method: 'POST', body: { admin: true } }))
    t.match(gina, { admin: true, roles: ['user', 'admin'] })

    const model = await json(await api('/users/erin', { token: adminToken }))
    for (const key of ['name', 'admin', 'groups', 'servers', 'last_activity', 'created', 'pending']) t.ok(key in model, `user model has ${key}`)
    t.match(model.created, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/, 'timestamps with microseconds and Z')

    const patched = await json(await api('/users/erin', { token: adminToken, method: 'PATCH', body: { admin: true } }))
    t.equal(patched.admin, true)
    const activity = (user: string) => api(`/users/${user}/activity`, { token: adminToken, method: 'POST', body: { last_activity: new Date().toISOString() } })
    t.equal((await activity('erin')).status, 200, 'activity for erin (now cached by name)')
    const renamed = await api('/users/erin', { token: adminToken, method: 'PATCH', body: { name: 'erin2' } })
    t.equal((await json(renamed)).name, 'erin2')
    t.equal((await activity('erin')).status, 404, 'after the rename the old name is unknown to activity reports')
    t.equal((await activity('erin2')).status, 200, 'and the new name is known')
    const clash = await api('/users/erin2', { token: adminToken, method: 'PATCH', body: { name: 'gina' } })
    t.equal(clash.status, 400)
    t.equal((await json(clash)).message, 'User gina already exists, username must be unique')
    t.equal((await api('/users/nosuchuser', { token: adminToken, method: 'PATCH', body: { admin: true } })).status, 404)
    t.equal((await api('/users/erin2', { token: adminToken, method: 'DELETE' })).status, 204)
    t.equal((await api('/users/erin2', { token: adminToken, method: 'DELETE' })).status, 404)
    t.equal((await activity('erin2')).status, 404, 'a deleted user\'s activity is 404 at once')
    const unknown = await api('/users/nosuchuser', { token: adminToken })
    t.equal(unknown.status, 404)
  })

  t.test('reads that arrive together are answered together, each with its own user', async t => {
    // user reads in the same turn of the hub's event loop share one statement (hub/src/turn-batch.ts)
    const names = Array.from({ length: 60 }, (_, i) => `student${String(i).padStart(3, '0')}`)
    const asked = [...names, 'nosuchuser', 'bad%00name', ...names.slice(0, 5)]
    const answers = await Promise.all(asked.map(async n => {
      const res = await api(`/users/${n}`, { token: adminToken })
      return { status: res.status, body: await json(res) }
    }))
    answers.forEach((a, i) => {
      if (i < names.length || i >= names.length + 2) {
        t.equal(a.status, 200, asked[i])
        t.equal(a.body.name, asked[i], `${asked[i]}: its own model`)
      }
    })
    t.equal(answers[names.length]!.status, 404, 'an unknown user among them is still 404')
    t.equal(answers[names.length + 1]!.status, 404, 'a NUL byte in a name is 404 and fails nobody else')
    const [me1, me2] = await Promise.all([json(await api('/user', { token: aliceToken })), json(await api('/user', { token: adminToken }))])
    t.equal(me1.name, 'alice')
    t.equal(me2.name, 'admin', 'who-am-I reads batched by id keep their callers apart')
  })

  t.test('paging, filters and sort, all in SQL', async t => {
    // Arrange server states directly: u1 has two running servers, u2 one pending.
    const ids = await db.selectFrom('users').select(['id', 'name']).where('name', 'in', ['student001', 'student002']).execute()
    const u1 = ids.find(r => r.name === 'student001')!.id, u2 = ids.find(r => r.name === 'student002')!.id
    await db.insertInto('servers').values([
      { user_id: u1, name: '', state: 'running', url: 'http://127.0.0.1:9', started: new Date() },
      { user_id: u1, name: 'foo', state: 'running', url: 'http://127.0.0.1:9', started: new Date() },
      { user_id: u2, name: '', state: 'pending', started: new Date() },
    ]).execute()
    const total = Number((await db.selectFrom('users').select(db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

    // fetch() cannot set Host; node:http can, as a reverse proxy in front of the hub would
    const body1 = await new Promise<any>((resolve, reject) => {
      const u = new URL(`${hub.publicUrl}/hub/api/users?limit=50`)
      http.get({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers: { accept: PAGED, host: 'hub.example:8443', authorization: `token ${adminToken}` } }, res => {
        let data = ''
        res.on('data', c => { data += c })
        res.on('end', () => resolve(JSON.parse(data)))
      }).on('error', reject)
    })
    t.equal(body1.items.length, 50)
    t.same(Object.keys(body1._pagination).sort(), ['limit', 'next', 'offset', 'total'])
    t.equal(body1._pagination.total, total)
    t.equal(body1._pagination.next.offset, 50)
    t.equal(body1._pagination.next.url, 'http://hub.example:8443/hub/api/users?limit=50&offset=50', 'next.url is absolute from the request Host')
    const last = await json(await api(`/users?offset=${total - 3}&limit=50`, { token: adminToken, headers: { accept: PAGED } }))
    t.equal(last.items.length, 3)
    t.equal(last._pagination.next, null)
    const bare = await json(await api('/users?limit=7', { token: adminToken }))
    t.ok(Array.isArray(bare) && bare.length === 7, 'without the Accept header: a bare list, still paged')
    const capped = await json(await api('/users?limit=5000', { token: adminToken, headers: { accept: PAGED } }))
    t.equal(capped._pagination.limit, 200, 'limit capped at 200')

    const ready = await json(await api('/users?state=ready', { token: adminToken, headers: { accept: PAGED } }))
    t.same(ready.items.map((u: any) => u.name), ['student001'], 'ready: exact, and a user with two servers counted once')
    t.equal(ready._pagination.total, 1)
    t.same(Object.keys(ready.items[0].servers).sort(), ['', 'foo'])
    const active = await json(await api('/users?state=active', { token: adminToken, headers: { accept: PAGED } }))
    t.same(active.items.map((u: any) => u.name).sort(), ['student001', 'student002'])
    const inactive = await json(await api('/users?state=inactive', { token: adminToken, headers: { accept: PAGED } }))
    t.equal(inactive._pagination.total, total - 2)
    const bogus = await api('/users?state=bogus', { token: adminToken })
    t.equal(bogus.status, 400)
    t.equal((await json(bogus)).message, "Unrecognized state filter: 'bogus'")

    const filtered = await json(await api('/users?name_filter=ENT05&sort=name', { token: adminToken, headers: { accept: PAGED } }))
    t.same(filtered.items.map((u: any) => u.name), Array.from({ length: 10 }, (_, i) => `student05${i}`), 'name_filter is a case-insensitive substring')
    const like = await json(await api('/users?name_filter=%25', { token: adminToken, headers: { accept: PAGED } }))
    t.equal(like._pagination.total, 0, 'LIKE wildcards in name_filter are literal')
    const desc = await json(await api('/users?sort=-name&limit=2', { token: adminToken }))
    t.same(desc.map((u: any) => u.name), ['student119', 'student118'])
    await db.updateTable('users').set({ last_activity: new Date() }).where('name', '=', 'student077').execute()
    const recent = await json(await api('/users?sort=-last_activity&limit=1', { token: adminToken }))
    t.equal(recent[0].name, 'student077')
    t.equal((await api('/users?sort=shoe', { token: adminToken })).status, 400)
    t.equal((await api('/users?offset=-1', { token: adminToken })).status, 400)

    const svcList = await json(await api('/users?limit=3', { token: SERVICE_TOKEN }))
    t.same(Object.keys(svcList[0]).sort(), ['admin', 'kind', 'name'], 'fields follow the caller\'s scopes')
    const single = await json(await api('/users/student001', { token: adminToken, headers: { accept: PAGED } }))
    t.equal(single.name, 'student001', 'the pagination Accept header is harmless elsewhere')
    await db.deleteFrom('servers').where('user_id', 'in', [u1, u2]).execute()
  })

  t.test('activity reports', async t => {
    const now = new Date().toISOString()
    const post = (body: unknown, token = aliceToken, user = 'alice') => api(`/users/${user}/activity`, { token, method: 'POST', body })
    const ok = await post({ last_activity: now })
    t.equal(ok.status, 200)
    t.equal(await ok.text(), '')
    const cases: Array<[unknown, number, string | RegExp]> = [
      [{ last_activity: 'yesterday' }, 400, "Not a valid timestamp: 'yesterday'"],
      [{ last_activity: new Date(Date.now() + 2 * 3600_000).toISOString() }, 400, /^Rejecting activity from more than an hour in the future: /],
      [{}, 400, 'body must contain at least one of `last_activity` or `servers`'],
      [['x'], 400, 'body must be a json dict'],
      [{ servers: { '': {} } }, 400, 'servers must be a dict of the form {server_name: {last_activity: timestamp}}'],
      [{ servers: { nosuch: { last_activity: now } } }, 400, "No such server 'nosuch' for user alice"],
    ]
    for (const [body, status, message] of cases) {
      const res = await post(body)
      t.equal(res.status, status, JSON.stringify(body))
      t.match((await json(res)).message, message)
    }
    t.equal((await post({ last_activity: now }, aliceToken, 'bob')).status, 403, "alice cannot report bob's activity")
    t.equal((await post({ last_activity: now }, adminToken, 'nosuchuser')).status, 404)
    await hub.ctx.activity.flush()
    const row = await db.selectFrom('users').select('last_activity').where('name', '=', 'alice').executeTakeFirstOrThrow()
    t.equal(row.last_activity?.toISOString(), now, 'the report landed (coalesced, flushed in a batch)')
    const older = new Date(Date.now() - 3600_000).toISOString()
    await post({ last_activity: older })
    await hub.ctx.activity.flush()
    const still = await db.selectFrom('users').select('last_activity').where('name', '=', 'alice').executeTakeFirstOrThrow()
    t.equal(still.last_activity?.toISOString(), now, 'an older report never moves activity back')
  })

  t.test('servers: start, already running, named servers, remove, stop', async t => {
    const start = await api('/users/alice/server', { token: aliceToken, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.ok([201, 202].includes(start.status), `start answers 201 or 202 (${start.status})`)
    t.equal(start.headers.get('content-type')?.split(';')[0], 'text/plain')
    for (let i = 0; i < 100; i++) {
      const m = await json(await api('/users/alice', { token: aliceToken }))
      if (m.servers['']?.ready) break
      await new Promise(r => setTimeout(r, 100))
    }
    const running = await api('/users/alice/server', { token: aliceToken, method: 'POST' })
    t.equal(running.status, 400)
    t.equal((await json(running)).message, 'alice is already running')
    // the claim writes the server's token and OAuth client in the same statement: exactly one of each
    const creds = await db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').where('users.name', '=', 'alice').where('servers.name', '=', '')
      .select(eb => [eb.selectFrom('api_tokens').whereRef('api_tokens.server_id', '=', 'servers.id').select(sql<string>`count(*)`.as('n')).as('tokens'),
        eb.selectFrom('oauth_clients').whereRef('oauth_clients.server_id', '=', 'servers.id').select('oauth_clients.id').as('client')]).executeTakeFirstOrThrow()
    t.same({ tokens: Number(creds.tokens), client: creds.client }, { tokens: 1, client: 'jupyterhub-user-alice' }, 'one server token and one OAuth client, written with the claim; the second POST wrote none')
    const servers = await db.selectFrom('servers').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow()
    const nobody = await api('/users/nosuchuser/server', { token: adminToken, method: 'POST' })
    t.equal(nobody.status, 404, 'starting an unknown user\'s server is 404')
    t.match(await json(nobody), { status: 404, message: "No such user: 'nosuchuser'" })
    t.equal((await db.selectFrom('servers').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow()).n, servers.n, 'and writes nothing')
    const model = await json(await api('/users/alice', { token: aliceToken }))
    t.match(model.servers[''], { name: '', ready: true, pending: null, url: '/user/alice/', progress_url: '/hub/api/users/alice/server/progress' })
    t.equal(model.server, '/user/alice/')

    const proxy = await json(await api('/proxy', { token: adminToken }))
    t.match(proxy['/user/alice/'], { routespec: '/user/alice/', data: { user: 'alice', server_name: '' } })
    t.match(proxy['/'], { routespec: '/', data: { hub: true } })
    t.equal((await api('/proxy', { token: aliceToken })).status, 403)
    t.equal((await api('/proxy', { token: adminToken, method: 'POST' })).status, 200)

    const foo = await api('/users/alice/servers/foo', { token: aliceToken, method: 'POST', body: { profile: 'small' } })
    t.ok([201, 202].includes(foo.status))
    t.equal((await api('/users/alice/servers/bad%20name!', { token: aliceToken, method: 'POST' })).status, 400)
    t.equal((await api('/users/alice/servers/f2', { token: aliceToken, method: 'POST' })).status === 400 ? 'limited' : 'ok', 'ok', 'a second named server is within the limit of 2')
    const third = await api('/users/alice/servers/f3', { token: aliceToken, method: 'POST' })
    t.equal(third.status, 400, 'the named server limit holds')
    for (let i = 0; i < 100; i++) {
      const m = await json(await api('/users/alice', { token: aliceToken }))
      if (m.servers.foo?.ready && m.servers.f2?.ready) break
      await new Promise(r => setTimeout(r, 100))
    }
    const fooModel = (await json(await api('/users/alice', { token: aliceToken }))).servers.foo
    t.match(fooModel, { name: 'foo', url: '/user/alice/foo/', progress_url: '/hub/api/users/alice/servers/foo/progress', user_options: { profile: 'small' } })
    t.equal((await json(await api('/users/alice/server', { token: aliceToken, method: 'DELETE', body: { remove: true } }))).message, 'Cannot delete the default server')
    // activity reports resolve names through a short-lived cache: alice was cached (by the activity
    // test) before foo existed, and a removed server must not be accepted from a stale entry
    const report = (server: string) => api('/users/alice/activity', { token: aliceToken, method: 'POST', body: { servers: { [server]: { last_activity: new Date().toISOString() } } } })
    t.equal((await report('foo')).status, 200, 'a server created after the cache entry is found')
    t.equal((await api('/users/alice/servers/foo', { token: aliceToken, method: 'DELETE', body: { remove: true } })).status, 204)
    t.equal((await report('foo')).status, 400, 'a removed server is no longer accepted')
    t.equal((await api('/users/alice/servers/f2', { token: aliceToken, method: 'DELETE' })).status, 204)
    const rows = await db.selectFrom('servers').select(['name', 'state']).where('user_id', '=', alice.id).orderBy('name').execute()
    t.same(rows, [{ name: '', state: 'running' }, { name: 'f2', state: 'stopped' }], 'removed server is gone, stopped one kept')
    t.equal((await api('/users/alice/servers/nosuch', { token: aliceToken, method: 'DELETE' })).status, 404)
    t.equal((await api('/users/alice/server', { token: nameOnly, method: 'DELETE' })).status, 403, 'a token without the scope cannot stop')
    const stop = await api('/users/alice/server', { token: aliceToken, method: 'DELETE' })
    t.equal(stop.status, 204)
    t.equal((await api('/users/alice/server', { token: aliceToken, method: 'DELETE' })).status, 204, 'stopping a stopped server is fine')
    const gone = await json(await api('/proxy', { token: adminToken }))
    t.equal(gone['/user/alice/'], undefined, 'route removed')
  })

  t.test('cookie-authenticated API calls need our own origin', async t => {
    const b = new Browser(hub.publicUrl)
    await b.login('alice', DEV_PASSWORD)
    const own = await b.fetch('/hub/api/user', { headers: { referer: `${hub.publicUrl}/hub/home` } })
    t.equal(own.status, 200, 'same-origin Referer: the cookie counts')
    const none = await b.fetch('/hub/api/user')
    t.equal(none.status, 403, 'no Referer/Origin: the cookie is ignored')
    const evil = await b.fetch('/hub/api/users/alice/server', { method: 'POST', headers: { origin: 'http://evil.example' } })
    t.equal(evil.status, 403, 'another site cannot start a server with the cookie')
    const fetchSite = await b.fetch('/hub/api/users/alice/server', { method: 'DELETE', headers: { referer: `${hub.publicUrl}/hub/home`, 'sec-fetch-site': 'cross-site' } })
    t.equal(fetchSite.status, 403, 'Sec-Fetch-Site: cross-site is refused even with a Referer')
  })

  t.test('services', async t => {
    const list = await json(await api('/services', { token: adminToken }))
    t.match(list.svc, { kind: 'service', name: 'svc', roles: ['lister'] })
    t.equal((await api('/services/svc', { token: adminToken })).status, 200)
    t.equal((await api('/services/nosuch', { token: adminToken })).status, 404, 'unknown service is 404 (3.0 said 500)')
    t.equal((await api('/services', { token: aliceToken })).status, 403)
  })

  t.test('bodies over the limit get 413', async t => {
    const res = await api('/users', { token: adminToken, method: 'POST', raw: JSON.stringify({ usernames: ['x'], pad: 'x'.repeat(1_100_000) }) })
    t.equal(res.status, 413)
    t.equal((await json(res)).code, 'HUB_BODY_TOO_LARGE')
  })

  t.test('every endpoint checks its scope', async t => {
    const callers: Record<string, string | undefined> = { anonymous: undefined, alice: aliceToken, nameOnly, service: SERVICE_TOKEN, admin: adminToken }
    type Row = [string, string, Record<string, number>]
    const table: Row[] = [
      ['GET', '/users', { anonymous: 403, alice: 403, nameOnly: 403, service: 200, admin: 200 }],
      // filtered scopes (alice's own) cannot tell "not yours" from "not there": 404 (contract §7.1);
      // the service's unfiltered read:users:name shows names of everyone
      ['GET', '/users/bob', { anonymous: 403, alice: 404, nameOnly: 404, service: 200, admin: 200 }],
      ['GET', '/users/alice', { anonymous: 403, alice: 200, nameOnly: 200, service: 200, admin: 200 }],
      ['POST', '/users/newbie', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 201 }],
      ['PATCH', '/users/bob', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 200 }],
      ['DELETE', '/users/newbie', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 204 }],
      ['POST', '/users/bob/activity', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 200 }],
      ['DELETE', '/users/bob/server', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 204 }],
      ['GET', '/users/bob/server/progress', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 404 }],
      ['GET', '/info', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 200 }],
      ['GET', '/proxy', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 200 }],
      ['GET', '/services', { anonymous: 403, alice: 403, nameOnly: 403, service: 403, admin: 200 }],
    ]
    for (const [method, p, expect] of table) {
      for (const [who, token] of Object.entries(callers)) {
        const body = p.endsWith('/activity') ? { last_activity: new Date().toISOString() } : p.startsWith('/users/bob') && method === 'PATCH' ? { admin: false } : undefined
        const res = await api(p, { token, method, body })
        t.equal(res.status, expect[who], `${method} ${p} as ${who}`)
        if (res.status === 403) t.match((await json(res)).message, /Forbidden|requires any of/)
        else await res.body?.cancel()
      }
    }
  })
})
