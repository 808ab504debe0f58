/**
 * The culler's rules on a real hub and real Postgres, with server rows arranged directly (a test
 * may set the clock by writing `last_activity`) and a spawner whose `stop` records the call, so
 * no processes are needed: named servers and their removal, user deletion only when asked, admins
 * skipped, activity arriving between selection and stop, and bad input to the admin API.
 */
import t from 'tap'
import { sql } from 'kysely'
import type { Spawner, SpawnerState } from '../../spawner/src/index.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { ensureUser } from '../src/users/user.repository.js'
import { createToken } from '../src/tokens/token.repository.js'
import { createCuller } from '../src/culler/culler.js'
import { pruneEvents, withCullEvents } from '../src/culler/cull.repository.js'
import { routePath } from '../src/proxy/route-sync.js'

/** Records every stop; `gate` lets a test hold one stop open. */
class RecordingSpawner implements Spawner {
  readonly kind = 'recording'
  readonly stops: string[] = []
  gate: ((who: string) => Promise<void>) | undefined
  async start(): Promise<never> { throw new Error('the recording spawner starts nothing') }
  async stop(_state: SpawnerState, who: { user: string; serverName: string }): Promise<void> {
    const label = `${who.user}/${who.serverName}`
    this.stops.push(label)
    await this.gate?.(label)
  }
  async poll() { return { running: true as const } }
  async close() {}
}

async function setup(t: Parameters<Parameters<typeof t.test>[1]>[0], args: string[]) {
  const spawner = new RecordingSpawner()
  const hub = await startTestHub(t, { args: ['--no-cull-idle', '--no-cleanup-servers', '--cull-timeout', '3600', ...args], spawner: () => spawner })
  const root = await ensureUser(hub.db, 'root', { admin: true })
  const admin = (await createToken(hub.db, { kind: 'api', userId: root.id, scopes: ['inherit'] })).token
  return { hub, spawner, admin }
}

/** A running server row (no process) idle for `idleMinutes`; the user's own activity likewise. */
async function runningServer(hub: TestHub, user: string, server = '', idleMinutes = 120, o: { admin?: boolean } = {}): Promise<string> {
  const u = await ensureUser(hub.db, user, { admin: o.admin })
  const ago = sql<Date>`now() - make_interval(mins => ${idleMinutes})`
  await hub.db.updateTable('users').set({ last_activity: ago }).where('id', '=', u.id).execute()
  const row = await hub.db.insertInto('servers').values({
    user_id: u.id, name: server, state: 'running', spawner_kind: 'recording', url: 'http://127.0.0.1:9', started: sql<Date>`now() - interval '1 day'`, last_activity: ago,
  }).returning('id').executeTakeFirstOrThrow()
  return row.id
}

/** Put every running server's route in the proxy, as idle as its row says (one bulk PUT). */
async function syncRoutes(hub: TestHub): Promise<void> {
  const rows = await hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
    .select(['users.name as user', 'servers.name', 'servers.url', 'servers.last_activity']).where('servers.state', '=', 'running').execute()
  await hub.proxyClient.replaceRoutes(Object.fromEntries(rows.map(r => [routePath(r.user, r.name),
    { target: r.url!, user: r.user, server_name: r.name, jupyterhub: true, last_activity: r.last_activity!.toISOString() }])))
}

const until = async (what: string, fn: () => boolean) => {
  for (let i = 0; i < 200 && !fn(); i++) await new Promise(r => setTimeout(r, 50))
  if (!fn()) throw new Error(`timed out waiting for ${what}`)
}

async function cull(hub: TestHub, token: string, body: unknown = {}) {
  const res = await fetch(`${hub.hubUrl}/hub/api/cull`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, json: await res.json() as any }
}

const state = async (hub: TestHub, id: string) => (await hub.db.selectFrom('servers').select('state').where('id', '=', id).executeTakeFirst())?.state

t.test('only servers idle past the timeout go; named servers are stopped, and removed when asked', async t => {
  const { hub, spawner, admin } = await setup(t, ['--cull-remove-named-servers'])
  const old = await runningServer(hub, 'dora', '', 120)
  const fresh = await runningServer(hub, 'ed', '', 5)
  const named = await runningServer(hub, 'fay', 'gpu', 90)
  const report = await cull(hub, admin)
  t.equal(report.status, 200)
  t.match(report.json, { candidates: 2, stopped: 2, skipped: 0 })
  t.same(spawner.stops.sort(), ['dora/', 'fay/gpu'], 'the spawner stopped exactly the two idle servers')
  t.equal(await state(hub, old), 'stopped')
  t.equal(await state(hub, fresh), 'running', 'five minutes idle is under the hour')
  t.equal(await state(hub, named), undefined, 'the named server row is removed')
  t.match(report.json.actions.find((a: any) => a.server === 'gpu'), { user: 'fay', action: 'stopped', detail: 'removed' })
  t.ok(report.json.actions.find((a: any) => a.user === 'dora').idle_seconds >= 7200, 'idle time reported in seconds')
  t.ok(await hub.db.selectFrom('users').select('id').where('name', '=', 'dora').executeTakeFirst(), 'users stay unless asked')
})

t.test('without --cull-remove-named-servers a culled named server is only stopped', async t => {
  const { hub, admin } = await setup(t, [])
  const named = await runningServer(hub, 'gil', 'big', 120)
  t.match((await cull(hub, admin)).json, { stopped: 1 })
  t.equal(await state(hub, named), 'stopped', 'the row stays, stopped')
})

t.test('--cull-users deletes idle non-admin users left with no server; admins and busy users stay', async t => {
  const { hub, admin } = await setup(t, ['--cull-users'])
  await runningServer(hub, 'hal', '', 120)
  await runningServer(hub, 'ida', '', 120)
  await runningServer(hub, 'ida', 'busy', 1) // still active: ida keeps her account...
  await hub.db.updateTable('users').set({ last_activity: sql<Date>`now() - interval '2 hours'` }).where('name', '=', 'ida').execute() // ...though she looks idle
  await runningServer(hub, 'boss', '', 120, { admin: true })
  const report = await cull(hub, admin)
  t.match(report.json, { stopped: 3, users_deleted: 1 }, "hal's, ida's idle one and the admin's (cullAdminUsers is on)")
  const names = (await hub.db.selectFrom('users').select('name').orderBy('name').execute()).map(r => r.name)
  t.same(names, ['boss', 'ida', 'root'], 'hal went; ida (an active server) and boss (an admin) stayed')
  t.match(report.json.actions.filter((a: any) => a.action === 'user-deleted'), [{ user: 'hal', server: null }])
  const events = await fetch(`${hub.hubUrl}/hub/api/cull/events`, { headers: { authorization: `token ${admin}` } }).then(r => r.json()) as any
  t.ok(events.events.some((e: any) => e.user === 'hal' && e.action === 'user-deleted'), 'the deletion is logged')
})

t.test('--no-cull-admin-users leaves admins running', async t => {
  const { hub, spawner, admin } = await setup(t, ['--no-cull-admin-users'])
  const boss = await runningServer(hub, 'boss', '', 600, { admin: true })
  const jo = await runningServer(hub, 'jo', '', 600)
  t.match((await cull(hub, admin)).json, { candidates: 1, stopped: 1 })
  t.same(spawner.stops, ['jo/'])
  t.equal(await state(hub, boss), 'running')
  t.equal(await state(hub, jo), 'stopped')
})

t.test('--no-cull-admin-users: the preview leaves admins out too', async t => {
  const { hub, spawner, admin } = await setup(t, ['--no-cull-admin-users'])
  await runningServer(hub, 'boss', '', 600, { admin: true })
  await runningServer(hub, 'jo', '', 600)
  const preview = await cull(hub, admin, { dry_run: true })
  t.same(preview.json.servers.map((s: any) => s.user), ['jo'])
  t.same(spawner.stops, [], 'a preview stops nothing')
})

t.test('a server that reports activity between selection and stop is not culled', async t => {
  const { hub, spawner, admin } = await setup(t, ['--cull-concurrency', '1'])
  const kim = await runningServer(hub, 'kim', '', 300) // the most idle: stopped first
  const lou = await runningServer(hub, 'lou', '', 200)
  // While kim's stop is in flight (one at a time), lou's server reports activity through the API.
  spawner.gate = async who => {
    if (who !== 'kim/') return
    const now = new Date().toISOString()
    const res = await fetch(`${hub.hubUrl}/hub/api/users/lou/activity`, {
      method: 'POST', headers: { authorization: `token ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ last_activity: now, servers: { '': { last_activity: now } } }),
    })
    if (res.status !== 200) throw new Error(`activity: ${res.status}`)
  }
  const report = await cull(hub, admin)
  t.match(report.json, { candidates: 2, stopped: 1, skipped: 1 }, 'both were selected; one was stopped')
  t.same(spawner.stops, ['kim/'], "lou's server was never stopped")
  t.equal(await state(hub, kim), 'stopped')
  t.equal(await state(hub, lou), 'running')
  t.match(report.json.actions, [{ user: 'kim', action: 'stopped' }, { user: 'lou', action: 'skipped', detail: 'active again' }])
  const events = await fetch(`${hub.hubUrl}/hub/api/cull/events`, { headers: { authorization: `token ${admin}` } }).then(r => r.json()) as any
  t.match(events.events, [{ user: 'lou', action: 'skipped', detail: 'active again' }, { user: 'kim', action: 'stopped' }], 'newest first, both recorded')
  const page = async (q: string) => (await fetch(`${hub.hubUrl}/hub/api/cull/events${q}`, { headers: { authorization: `token ${admin}` } }).then(r => r.json()) as any).events
  const first = await page('?limit=1')
  t.match(first, [{ user: 'lou' }], 'limit')
  t.match(await page(`?limit=1&before=${first[0].id}`), [{ user: 'kim' }], 'and before= pages back')

  // the log is pruned by age
  await withCullEvents(hub.db).insertInto('cull_events').values({ at: sql<Date>`now() - interval '40 days'` as never, user_name: 'ancient', server_name: '', idle_seconds: 1, rule: 'idle', action: 'stopped', by: 'hub', dry_run: false, detail: null }).execute()
  t.equal(await pruneEvents(hub.db, 30), 1, 'events older than 30 days go')
  t.same((await page('')).map((e: any) => e.user), ['lou', 'kim'], 'the rest stay')
})

t.test('bad input gets a clear error with a stable code', async t => {
  const { hub, admin } = await setup(t, [])
  const get = (q: string) => fetch(`${hub.hubUrl}/hub/api/cull/events${q}`, { headers: { authorization: `token ${admin}` } })
  for (const q of ['?limit=0', '?limit=abc', '?limit=100000', '?before=x']) {
    const res = await get(q)
    t.equal(res.status, 400, q)
    t.match(await res.json(), { status: 400, code: /^HUB_CULL_BAD_/ }, q)
  }
  for (const body of [[], 'yes', { dry_run: 'yes' }, { dry_run: true, extra: 1 }]) {
    const res = await cull(hub, admin, body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.equal(res.json.code, 'HUB_CULL_BAD_BODY')
  }
  const big = await fetch(`${hub.hubUrl}/hub/api/cull`, { method: 'POST', headers: { authorization: `token ${admin}` }, body: JSON.stringify({ dry_run: true, pad: 'x'.repeat(10_000) }) })
  t.equal(big.status, 413, 'bodies are size-limited')
  t.equal((await big.json() as any).code, 'HUB_BODY_TOO_LARGE')
  const bad = await fetch(`${hub.hubUrl}/hub/api/cull`, { method: 'POST', headers: { authorization: `token ${admin}` }, body: '{nope' })
  t.equal(bad.status, 400)
  t.equal((await bad.json() as any).code, 'HUB_BAD_JSON')
})

t.test('createCuller: a dry run changes nothing and is logged as such; sweeps never overlap; close waits', async t => {
  const { hub, spawner, admin } = await setup(t, [])
  const ann = await runningServer(hub, 'ann', '', 300)
  const ben = await runningServer(hub, 'ben', '', 200)
  await syncRoutes(hub)
  const culler = createCuller(hub.ctx, { timeout: 3600, every: 3600, maxAge: 0, cullUsers: false, concurrency: 1, cullAdminUsers: true, removeNamedServers: false })
  t.teardown(() => culler.close())

  const dry = await culler.sweep({ dryRun: true, by: 'hub' })
  t.match(dry, { dryRun: true, by: 'hub', candidates: 2, stopped: 2 }, 'it reports what it would stop')
  t.same(spawner.stops, [], 'but stops nothing')
  t.same([await state(hub, ann), await state(hub, ben)], ['running', 'running'])
  const events = await fetch(`${hub.hubUrl}/hub/api/cull/events`, { headers: { authorization: `token ${admin}` } }).then(r => r.json()) as any
  t.match(events.events, [{ user: 'ben', dry_run: true, by: 'hub' }, { user: 'ann', dry_run: true, by: 'hub' }], 'logged with dry_run: true')

  // one sweep at a time: B, asked for while A is stopping ann, runs after A and finds nothing left
  let release!: () => void
  const held = new Promise<void>(r => { release = r })
  spawner.gate = who => who === 'ann/' ? held : Promise.resolve()
  const a = culler.sweep()
  await until("ann's stop", () => spawner.stops.includes('ann/'))
  let bDone = false
  const b = culler.sweep().finally(() => { bDone = true })
  await new Promise(r => setTimeout(r, 300))
  t.notOk(bDone, 'B waits while A runs')
  release()
  t.match(await a, { candidates: 2, stopped: 2 })
  t.match(await b, { candidates: 0, stopped: 0 }, 'B ran after A')
  t.same(spawner.stops, ['ann/', 'ben/'], 'each stopped once')

  // close waits for a running sweep, then refuses new ones
  const cy = await runningServer(hub, 'cy', '', 300)
  await syncRoutes(hub)
  let releaseCy!: () => void
  const heldCy = new Promise<void>(r => { releaseCy = r })
  spawner.gate = who => who === 'cy/' ? heldCy : Promise.resolve()
  const c = culler.sweep()
  await until("cy's stop", () => spawner.stops.includes('cy/'))
  let closed = false
  const closing = culler.close().then(() => { closed = true })
  await new Promise(r => setTimeout(r, 300))
  t.notOk(closed, 'close waits for the sweep')
  releaseCy()
  await closing
  t.match(await c, { stopped: 1 }, 'which finished its work')
  t.equal(await state(hub, cy), 'stopped')
  await t.rejects(culler.sweep(), { code: 'HUB_SHUTTING_DOWN' }, 'no sweep after close')
})
