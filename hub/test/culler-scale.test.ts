/**
 * 5,000 idle servers culled in one bounded sweep, through the real hub (route check against the
 * real proxy child, SpawnManager.stop for each), with the stop concurrency limit respected.
 * Server rows are inserted directly, their routes put in the proxy in bulk; the spawner's `stop`
 * records calls and how many overlap.
 * Timings are reported as comments, not asserted (see bench-results/ for the figures).
 */
import t from 'tap'
import { sql } from 'kysely'
import type { Spawner } from '../../spawner/src/index.js'
import { startTestHub } from '../../test/helpers/hub.js'
import { ensureUser } from '../src/users/user.repository.js'
import { createToken } from '../src/tokens/token.repository.js'
import { candidatesQuery } from '../src/culler/cull.repository.js'
import { routePath } from '../src/proxy/route-sync.js'

const N = 5000
const CONCURRENCY = 10

class CountingSpawner implements Spawner {
  readonly kind = 'counting'
  stops = 0
  inFlight = 0
  maxInFlight = 0
  async start(): Promise<never> { throw new Error('starts nothing') }
  async stop(): Promise<void> {
    this.stops++
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight)
    // a stop takes a moment (a pod deletion is an API call), so stops overlap if allowed to
    await new Promise(r => setTimeout(r, 2))
    this.inFlight--
  }
  async poll() { return { running: true as const } }
  async close() {}
}

t.test(`${N} idle servers culled in one sweep, at most ${CONCURRENCY} stops at once`, async t => {
  const spawner = new CountingSpawner()
  const hub = await startTestHub(t, { spawner: () => spawner, args: ['--no-cull-idle', '--no-cleanup-servers', '--cull-timeout', '3600', '--cull-concurrency', String(CONCURRENCY)] })
  const root = await ensureUser(hub.db, 'root', { admin: true })
  const admin = (await createToken(hub.db, { kind: 'api', userId: root.id, scopes: ['inherit'] })).token
  await sql`insert into users (name, last_activity) select 'scale-' || g, now() - interval '3 hours' from generate_series(1, ${N}) g`.execute(hub.db)
  await sql`insert into servers (user_id, name, state, spawner_kind, url, started, last_activity)
    select id, '', 'running', 'counting', 'http://127.0.0.1:9', now() - interval '1 day', now() - interval '2 hours' - make_interval(secs => id)
    from users where name like 'scale-%'`.execute(hub.db)
  // and some that are not idle, which must survive
  await sql`insert into users (name) select 'busy-' || g from generate_series(1, 50) g`.execute(hub.db)
  await sql`insert into servers (user_id, name, state, spawner_kind, url, started, last_activity)
    select id, '', 'running', 'counting', 'http://127.0.0.1:9', now() - interval '1 day', now() from users where name like 'busy-%'`.execute(hub.db)

  // Their routes are in the proxy already, idle as long (as after a day of use): one bulk PUT.
  const servers = await sql<{ name: string; last_activity: Date }>`select u.name, s.last_activity from servers s join users u on u.id = s.user_id`.execute(hub.db)
  await hub.proxyClient.replaceRoutes(Object.fromEntries(servers.rows.map(r => [routePath(r.name, ''),
    { target: 'http://127.0.0.1:9', user: r.name, server_name: '', jupyterhub: true, last_activity: r.last_activity.toISOString() }])))

  const started = process.hrtime.bigint()
  const res = await fetch(`${hub.hubUrl}/hub/api/cull`, { method: 'POST', headers: { authorization: `token ${admin}` }, body: '{}', signal: AbortSignal.timeout(120_000) })
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const report = await res.json() as any
  t.equal(res.status, 200, 'POST /hub/api/cull answers 200')
  if (res.status !== 200) t.comment(JSON.stringify(report))
  t.match(report, { candidates: N, stopped: N, skipped: 0, truncated: true }, 'all selected and stopped (the selection hit the per-sweep limit)')
  t.equal(spawner.stops, N, 'the spawner stopped each once')
  t.ok(spawner.maxInFlight <= CONCURRENCY, `never more than ${CONCURRENCY} stops at once (saw ${spawner.maxInFlight})`)
  t.ok(spawner.maxInFlight > 1, 'stops did run concurrently')
  const left = await sql<{ state: string; n: string }>`select state, count(*) as n from servers group by state order by state`.execute(hub.db)
  t.same(left.rows.map(r => [r.state, Number(r.n)]), [['running', 50], ['stopped', N]], 'only the busy ones still run')
  const logged = await sql<{ n: string }>`select count(*) as n from cull_events where action = 'stopped' and not dry_run`.execute(hub.db)
  t.equal(Number(logged.rows[0]!.n), N, 'every cull is recorded')
  t.comment(`sweep of ${N}: ${Math.round(ms)} ms over HTTP, max ${spawner.maxInFlight} stops in flight`)

  // The idle query must be one the partial index on active servers can serve (on a table this
  // small the planner may still prefer a scan, so ask it to avoid one if it can). Statistics
  // first: whether autovacuum has analysed the table since the sweep is timing, and with stale
  // counts (5,050 active) the planner may pick a join order over the primary key instead.
  await sql`analyze servers, users`.execute(hub.db)
  const text = await hub.db.transaction().execute(async tx => {
    await sql`set local enable_seqscan = off`.execute(tx)
    const plan = await sql<{ 'QUERY PLAN': string }>`explain ${candidatesQuery({ timeout: 3600, maxAge: 0, cullAdminUsers: true }, 5000)}`.execute(tx)
    return plan.rows.map(r => r['QUERY PLAN']).join('\n')
  })
  t.match(text, /servers_active_idx/, 'the idle query can use the partial index on active servers')
  t.notMatch(text, /Seq Scan on servers/, 'so it need not read stopped servers')
  t.notMatch(text, /Seq Scan on users/, 'nor all users')

  const again = await fetch(`${hub.hubUrl}/hub/api/cull`, { method: 'POST', headers: { authorization: `token ${admin}` }, body: '{}' }).then(r => r.json()) as any
  t.match(again, { candidates: 0, stopped: 0 }, 'the next sweep has nothing to do')
})
