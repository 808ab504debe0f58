/**
 * Singleton leases (issue #14): exactly one hub runs each singleton loop; when the holder dies,
 * closes, loses its connection or freezes, another hub takes over within the stated time, and two
 * hubs never both believe they hold a lease. The processes that die here are real (SIGKILL,
 * SIGSTOP of a child holding the lock), and so is the database that frees their locks.
 * Stated bounds (hub/src/fleet/leases.ts): one tick after the holder's connection closes;
 * idleTimeout + one tick when the holder goes silent without closing it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { createLeases, type Leases } from '../../hub/src/fleet/leases.js'
import { createTestDatabase } from '../../test/helpers/db.js'
import { cutConnection, fleetMetrics, msUntil, startFleetHub, startSharedProxy, userToken } from '../../test/helpers/fleet.js'
import { sql } from 'kysely'

const log = createLogger('silent')
const TICK_MS = 100
const SPECS = [{ name: 'x', key: [101, 1] as const }, { name: 'y', key: [101, 2] as const }]

/** Counts the moments (sampled every few ms) when two holders both believe they hold the same lease. */
function watchOverlap(t: { teardown(fn: () => unknown): void }, all: () => Leases[]): { readonly overlaps: number } {
  const seen = { overlaps: 0 }
  const timer = setInterval(() => {
    for (const s of SPECS) if (all().filter(l => l.holds(s.name)).length > 1) seen.overlaps++
  }, 2)
  t.teardown(() => clearInterval(timer))
  return seen
}

t.test('two lease holders in one process: one holds, the other takes over on a cut or a close', async t => {
  const { url, db } = await createTestDatabase(t)
  const make = (name: string) => {
    const l = createLeases({ url, log, applicationName: `lease-test ${name}`, specs: SPECS, tickMs: TICK_MS })
    t.teardown(() => l.close())
    return l
  }
  const a = make('a')
  await a.start()
  const b = make('b')
  await b.start()
  const watch = watchOverlap(t, () => [a, b])
  t.same(SPECS.map(s => [a.holds(s.name), b.holds(s.name)]), [[true, false], [true, false]], 'the first to start holds both')

  await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'lease-test a'`.execute(db)
  const cutMs = await msUntil(() => b.holds('x') && b.holds('y'), 5000, 2)
  t.ok(cutMs >= 0 && cutMs < 5 * TICK_MS, `b holds both ${cutMs} ms after a's connection was cut (tick ${TICK_MS} ms)`)
  t.notOk(a.holds('x') || a.holds('y'), 'a holds nothing')
  await new Promise(r => setTimeout(r, 5 * TICK_MS))
  t.notOk(a.holds('x') || a.holds('y'), 'a reconnected but does not take what b holds')

  const closing = b.close()
  const closeMs = await msUntil(() => a.holds('x') && a.holds('y'), 5000, 2)
  await closing
  t.ok(closeMs >= 0 && closeMs < 5 * TICK_MS, `a holds both again ${closeMs} ms after b closed`)
  t.same(a.states().map(s => s.acquired), [2, 2], 'each acquired twice by a')
  t.equal(watch.overlaps, 0, 'never two holders of one lease at the same moment')
})

/** A holder in its own process (the built lease module from dist/): prints "held" once it holds x. */
function startHolder(url: string, name: string, tickMs: number): Promise<ChildProcess> {
  const leases = path.resolve('dist/hub/src/fleet/leases.js')
  const logMod = path.resolve('dist/core/src/log.js')
  const code = `
    const { createLeases } = await import(${JSON.stringify(leases)})
    const { createLogger } = await import(${JSON.stringify(logMod)})
    const l = createLeases({ url: process.env.DB_URL, log: createLogger('silent'), applicationName: ${JSON.stringify(name)}, specs: ${JSON.stringify(SPECS)}, tickMs: ${tickMs} })
    await l.start()
    const t = setInterval(() => { if (l.holds('x')) { process.stdout.write('held\\n'); clearInterval(t) } }, 10)
    setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, DB_URL: url }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the holder did not take the lease')) }, 10_000)
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('held')) { clearTimeout(timer); resolve(child) } })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`holder exited ${code}`)) })
  })
}

t.test('a holder process killed, or frozen with its socket open, loses its leases within the stated time', async t => {
  const { url } = await createTestDatabase(t)
  const tickMs = 200
  const idleMs = 3 * tickMs // the default: idle_session_timeout = 3 ticks

  const killed = await startHolder(url, 'lease-test killed', tickMs)
  t.teardown(() => { killed.kill('SIGKILL') })
  const heir = createLeases({ url, log, applicationName: 'lease-test heir', specs: SPECS, tickMs })
  t.teardown(() => heir.close())
  await heir.start()
  t.notOk(heir.holds('x'), 'the other process holds x')
  killed.kill('SIGKILL')
  const killMs = await msUntil(() => heir.holds('x'), 5000, 2)
  t.ok(killMs >= 0 && killMs <= tickMs + 300, `SIGKILL: taken over after ${killMs} ms (bound: one tick, ${tickMs} ms, plus a round trip)`)
  await heir.close()

  const frozen = await startHolder(url, 'lease-test frozen', tickMs)
  t.teardown(() => { frozen.kill('SIGKILL') })
  const heir2 = createLeases({ url, log, applicationName: 'lease-test heir2', specs: SPECS, tickMs })
  t.teardown(() => heir2.close())
  await heir2.start()
  t.notOk(heir2.holds('x'), 'the other process holds x')
  frozen.kill('SIGSTOP') // no FIN, no RST: only the database's idle timeout can free the lock
  const frozenMs = await msUntil(() => heir2.holds('x'), 10_000, 5)
  t.ok(frozenMs >= 0 && frozenMs <= idleMs + tickMs + 300, `SIGSTOP: taken over after ${frozenMs} ms (bound: idle timeout ${idleMs} ms + one tick)`)
  frozen.kill('SIGKILL')
})

t.test('two hubs: each singleton runs on exactly one, and moves when its holder is cut off or closes', async t => {
  const proxy = await startSharedProxy(t)
  const fleet = { leaseTickMs: 200 }
  const args = ['--cull-every', '1', '--poll-interval', '1']
  const a = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl, fleet, args })
  const b = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl, databaseUrl: a.databaseUrl, fleet, args })
  const admin = await userToken(a.db, 'admin', { admin: true })
  const LEASES = ['culler', 'poll', 'prune', 'routes']
  const held = async (hub: typeof a) => { const m = await fleetMetrics(hub, admin.token); return LEASES.filter(l => m.get(`fleethub_lease_held{lease="${l}"}`) === 1) }
  const runs = async (hub: typeof a) => { const m = await fleetMetrics(hub, admin.token); return Object.fromEntries(LEASES.map(l => [l, m.get(`fleethub_lease_runs_total{lease="${l}"}`) ?? 0])) }

  t.same(await held(a), LEASES, 'the first hub holds every singleton')
  t.same(await held(b), [], 'the second holds none')
  const before = await runs(b)
  await new Promise(r => setTimeout(r, 2500))
  const ranA = await runs(a)
  t.ok(ranA.culler! >= 1 && ranA.poll! >= 1 && ranA.routes! >= 1, `the holder runs the culler, the poll and the route loops (${JSON.stringify(ranA)})`)
  t.same(await runs(b), before, 'the other hub runs none of them')

  t.equal(await cutConnection(a.db, a, 'leases'), 1, "A's lock connection terminated")
  const cutMs = await msUntil(async () => (await held(b)).length === LEASES.length, 5000, 10)
  t.ok(cutMs >= 0 && cutMs < 1000, `B holds every singleton ${cutMs} ms after A's lock connection was cut (tick 200 ms)`)
  t.same(await held(a), [], 'A holds none')
  const aAfterCut = await runs(a)
  const bAtTakeover = await runs(b)
  await new Promise(r => setTimeout(r, 2000))
  t.same(await runs(a), aAfterCut, 'A runs no singleton once it lost the leases')
  const ranB = await runs(b)
  t.ok(ranB.culler! > bAtTakeover.culler! && ranB.poll! > bAtTakeover.poll!, 'B runs them now')

  const closing = b.close()
  const closeMs = await msUntil(async () => (await held(a)).length === LEASES.length, 5000, 10)
  await closing
  t.ok(closeMs >= 0 && closeMs < 5000, `A holds every singleton again ${closeMs} ms after B started closing`)
})

t.test('a held lease whose proof went stale (the event loop was busy) is proved again by confirm, not given up', async t => {
  const { url } = await createTestDatabase(t)
  // tick 1 s: trusted for 2 s after a proof, the session ended by Postgres after 3 s of silence
  const make = (name: string) => {
    const l = createLeases({ url, log, applicationName: `lease-confirm ${name}`, specs: SPECS, tickMs: 1000 })
    t.teardown(() => l.close())
    return l
  }
  const a = make('a')
  await a.start()
  const b = make('b')
  await b.start()
  t.ok(a.holds('x'), 'a holds x')
  t.equal(await b.confirm('x'), false, 'b, which does not hold x, cannot confirm it')
  // a busy event loop: no tick for 2.3 s, so the last proof is older than the trust window
  const until = Date.now() + 2300
  while (Date.now() < until) { /* busy */ }
  t.notOk(a.holds('x'), 'the proof is stale: holds() says no')
  const t0 = Date.now()
  t.equal(await a.confirm('x'), true, 'confirm proves it again: the session and its lock were still there')
  t.ok(Date.now() - t0 < 2000, `within the trust window (${Date.now() - t0} ms)`)
  t.ok(a.holds('x'), 'and holds() agrees')
  t.notOk(b.holds('x'), 'b never took it')
  await a.close()
  t.equal(await a.confirm('x'), false, 'a closed holder confirms nothing')
})
