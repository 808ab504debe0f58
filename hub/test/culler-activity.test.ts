/**
 * Activity the proxy saw before (or during) a sweep counts in that sweep. Real hub, real proxy,
 * real single-user processes; the only thing a test holds back is when a call returns, so the
 * interleavings a busy hub produces by chance happen here every time.
 *
 * Two ways the old code dropped activity the proxy had seen:
 * - a sweep that asked for a route check while another was in flight got that one's result, read
 *   from the proxy before the sweep began;
 * - a sweep read the proxy once, before its selection, and stopped servers one by one after it: a
 *   user who came back through the proxy while earlier servers were being stopped was culled anyway.
 */
import t from 'tap'
import { sql } from 'kysely'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { ensureUser } from '../src/users/user.repository.js'
import { createToken } from '../src/tokens/token.repository.js'
import { createCuller } from '../src/culler/culler.js'
import { RouteSync, type RoutesApi } from '../src/proxy/route-sync.js'
import { waitFor } from '../../test/helpers/wait.js'

async function tokenFor(hub: TestHub, name: string, admin = false): Promise<string> {
  const user = await ensureUser(hub.db, name, { admin })
  return (await createToken(hub.db, { kind: 'api', userId: user.id, scopes: ['inherit'], note: 'culler activity test' })).token
}

async function startServer(hub: TestHub, admin: string, user: string): Promise<void> {
  await ensureUser(hub.db, user)
  const res = await fetch(`${hub.hubUrl}/hub/api/users/${user}/server`, { method: 'POST', headers: { authorization: `token ${admin}` } })
  if (res.status !== 201 && res.status !== 202) throw new Error(`spawn ${user}: ${res.status} ${await res.text()}`)
  await waitFor(`${user} running`, async () => (await serverRow(hub, user))?.state === 'running' || undefined)
  // The server's own first activity report (sent right after it starts) lands before a test ages
  // the server; arriving later, it would make the server look active again.
  await waitFor(`${user}'s first activity report`, async () => {
    await hub.ctx.activity.flush()
    const u = await hub.db.selectFrom('users').select('last_activity').where('name', '=', user).executeTakeFirst()
    return u?.last_activity ? true : undefined
  })
}

async function serverRow(hub: TestHub, user: string) {
  return hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
    .select(['servers.id', 'servers.state', 'servers.last_activity']).where('users.name', '=', user).where('servers.name', '=', '').executeTakeFirst()
}

/** One request to the user's own server through the proxy, signed in as that user: real activity (2xx). */
async function browse(hub: TestHub, user: string, token: string): Promise<void> {
  const res = await fetch(`${hub.publicUrl}/user/${user}/api/status`, { headers: { authorization: `token ${token}` } })
  await res.arrayBuffer()
  if (res.status !== 200) throw new Error(`browse as ${user}: ${res.status}`)
}

/** Make the server look idle for an hour in the database and in the proxy's route. */
async function ageServer(hub: TestHub, user: string): Promise<void> {
  await sql`update servers s set last_activity = now() - interval '1 hour', started = now() - interval '2 hours'
    from users u where u.id = s.user_id and u.name = ${user}`.execute(hub.db)
  const routes = await hub.proxyClient.getRoutes()
  await hub.proxyClient.deleteRoute(`/user/${user}`) // a route that exists keeps the newer of its own time and the given one
  routes[`/user/${user}`]!.last_activity = new Date(Date.now() - 3600_000).toISOString()
  await hub.proxyClient.replaceRoutes(routes)
}

t.test('a route check asked for while another is in flight reads the proxy again', async t => {
  const hub = await startTestHub(t, { args: ['--no-cull-idle'] })
  const admin = await tokenFor(hub, 'root', true)
  const bob = await tokenFor(hub, 'bob')
  await startServer(hub, admin, 'bob')
  await ageServer(hub, 'bob')

  // The proxy's routes are read, then held back before the pass goes on (a slow hub, a big table).
  let hold: Promise<void> | undefined
  let reads = 0
  const api: RoutesApi = {
    getRoutes: async () => { reads++; const r = await hub.proxyClient.getRoutes(); await hold; return r },
    addRoute: (p, target, data) => hub.proxyClient.addRoute(p, target, data),
    deleteRoute: p => hub.proxyClient.deleteRoute(p),
    replaceRoutes: r => hub.proxyClient.replaceRoutes(r),
  }
  const sync = new RouteSync({ api, db: hub.db, log: hub.ctx.log, hubTarget: hub.hubUrl, activity: hub.ctx.activity })
  let release!: () => void
  hold = new Promise(r => { release = r })
  const first = sync.check()
  await waitFor('the first pass read the routes', async () => reads === 1 || undefined)

  const before = Date.now()
  await browse(hub, 'bob', bob) // the proxy sees bob after the first pass read its routes
  const second = sync.check() // e.g. the culler's sweep starting now
  hold = undefined
  release()
  await Promise.all([first, second])
  await hub.ctx.activity.flush()

  t.equal(reads, 2, 'the second caller got a pass of its own, not the one in flight')
  const row = await serverRow(hub, 'bob')
  t.ok(row?.last_activity && row.last_activity.getTime() >= before - 5, `bob's activity reached the database (${row?.last_activity?.toISOString()})`)
})

t.test('a user who comes back through the proxy while a sweep stops others is not culled', async t => {
  const hub = await startTestHub(t, { args: ['--no-cull-idle', '--cull-timeout', '60'] })
  const admin = await tokenFor(hub, 'root', true)
  const bob = await tokenFor(hub, 'bob')
  await startServer(hub, admin, 'alice')
  await startServer(hub, admin, 'bob')
  await ageServer(hub, 'alice')
  await ageServer(hub, 'bob')
  // alice is older, so she is selected first; stops run one at a time
  await sql`update servers s set last_activity = now() - interval '2 hours' from users u where u.id = s.user_id and u.name = 'alice'`.execute(hub.db)

  const culler = createCuller({
    ...hub.ctx,
    spawns: {
      async stop(server, reason) {
        // bob comes back through the proxy while alice's server is being stopped
        if (server.userName === 'alice') await browse(hub, 'bob', bob)
        return hub.ctx.spawns.stop(server, reason)
      },
    },
  }, { timeout: 60, every: 3600, maxAge: 0, cullUsers: false, concurrency: 1, cullAdminUsers: true, removeNamedServers: false, refreshMs: 0 })
  t.teardown(() => culler.close())

  const report = await culler.sweep({ by: 'api' })
  t.equal(report.candidates, 2, 'both were idle at the selection')
  t.match(report.actions, [
    { userName: 'alice', action: 'stopped', rule: 'idle' },
    { userName: 'bob', action: 'skipped', detail: 'active again' },
  ], 'bob, seen by the proxy before his turn, is kept')
  t.equal((await serverRow(hub, 'bob'))?.state, 'running')
  t.equal((await serverRow(hub, 'alice'))?.state, 'stopped')
})

t.test('refused requests are not activity; requests the user is let in with are', async t => {
  // As configurable-http-proxy: a response >= 300 does not count, or anyone could keep anyone's
  // server from being culled by knocking on its door.
  const hub = await startTestHub(t, { args: ['--no-cull-idle', '--cull-timeout', '60'] })
  const admin = await tokenFor(hub, 'root', true)
  const carol = await tokenFor(hub, 'carol')
  await startServer(hub, admin, 'carol')
  await ageServer(hub, 'carol')

  const anonymous = await fetch(`${hub.publicUrl}/user/carol/api/status`, { redirect: 'manual' })
  await anonymous.arrayBuffer()
  t.equal(anonymous.status, 403, 'a request without credentials is refused by the server')
  t.match(await previewOf(hub), [{ userName: 'carol', rule: 'idle' }], 'and leaves carol idle')

  await browse(hub, 'carol', carol)
  t.same(await previewOf(hub), [], 'her own request counts at once')
})

async function previewOf(hub: TestHub) {
  const culler = createCuller(hub.ctx, { timeout: 60, every: 3600, maxAge: 0, cullUsers: false, concurrency: 1, cullAdminUsers: true, removeNamedServers: false })
  try { return await culler.preview() } finally { await culler.close() }
}
