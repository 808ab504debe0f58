/**
 * The fleet's notification bus (issue #14): one LISTEN connection per hub, which reconnects and
 * resynchronises. The attack it defends against: a hub whose listening connection dropped misses
 * the revocations published meanwhile (Postgres keeps nothing for a session that is gone), and
 * would go on serving the revoked identities from its cache. So while the connection is down the
 * cache is bypassed, and once it is back the whole cache is dropped.
 */
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { createNotifyBus, MAX_PAYLOAD_BYTES } from '../../hub/src/fleet/notify-bus.js'
import { CACHE_CHANNEL, packEvents, syncCaches } from '../../hub/src/fleet/cache-sync.js'
import type { InvalidateBy } from '../../hub/src/auth/request-auth.js'
import { createTestDatabase } from '../../test/helpers/db.js'
import { asToken, cutConnection, fleetMetrics, msUntil, startFleetHub, startSharedProxy, userToken } from '../../test/helpers/fleet.js'

const log = createLogger('silent')

/** A cache that records what it is told (the structural interfaces cache-sync needs). */
function recordingCaches() {
  const seen = { drops: [] as InvalidateBy[], all: 0, forgotten: [] as string[], targetsDropped: 0 }
  const authListeners: Array<(by: InvalidateBy | 'all') => void> = []
  const forgetListeners: Array<(n: string) => void> = []
  return {
    seen,
    auth: { onInvalidate: (l: (by: InvalidateBy | 'all') => void) => { authListeners.push(l) }, drop: (by: InvalidateBy) => { seen.drops.push(by) }, dropAll: () => { seen.all++ },
      invalidate: (by: InvalidateBy) => authListeners.forEach(l => l(by)), invalidateAll: () => authListeners.forEach(l => l('all')) },
    activity: { onForget: (l: (n: string) => void) => { forgetListeners.push(l) }, drop: (n: string) => { seen.forgotten.push(n) }, dropAll: () => { seen.targetsDropped++ },
      forget: (n: string) => forgetListeners.forEach(l => l(n)) },
  }
}

t.test('events pack into payloads under the NOTIFY limit', async t => {
  const events = Array.from({ length: 500 }, (_, i) => JSON.stringify({ activity: `ünïcödé-${i}-${'x'.repeat(40)}` }))
  const payloads = packEvents('hub-1', events)
  t.ok(payloads.length > 1, `split into ${payloads.length}`)
  for (const p of payloads) t.ok(Buffer.byteLength(p) <= MAX_PAYLOAD_BYTES, 'each under the limit')
  t.same(payloads.flatMap(p => (JSON.parse(p) as { events: unknown[] }).events), events.map(e => JSON.parse(e)), 'nothing lost, order kept')
})

t.test('a burst of invalidations on one hub all arrive on the other, not back at the sender', async t => {
  const { url, pool } = await createTestDatabase(t)
  const start = async (hubId: string) => {
    const bus = createNotifyBus({ url, publisher: pool, log, applicationName: `bus-test ${hubId}` })
    const caches = recordingCaches()
    syncCaches({ bus, hubId, log, auth: caches.auth, activity: caches.activity })
    await bus.start()
    t.teardown(() => bus.close())
    return { bus, ...caches }
  }
  const a = await start('a')
  const b = await start('b')
  for (let i = 0; i < 3000; i++) a.auth.invalidate({ tokenId: String(i) })
  a.auth.invalidateAll()
  a.activity.forget('alice')
  const ms = await msUntil(() => b.seen.all === 1 && b.seen.forgotten.length === 1, 5000)
  t.ok(ms >= 0, `delivered in ${ms} ms`)
  t.same(b.seen.forgotten, ['alice'])
  t.equal(b.seen.drops.length, 0, 'an "all" in the same turn covers the single drops')
  for (let i = 0; i < 3000; i++) a.auth.invalidate({ tokenId: String(i) })
  await msUntil(() => b.seen.drops.length === 3000, 5000)
  t.equal(b.seen.drops.length, 3000, 'every one of 3000 single invalidations arrives')
  t.same(b.seen.drops[2999], { tokenId: '2999' })
  t.equal(a.seen.drops.length + a.seen.all, 0, 'the sender ignores its own messages')
  // the sender counts a payload once Postgres answered its NOTIFY, which may be after B got it
  t.ok(await msUntil(() => a.bus.health().published > 2, 2000) >= 0, `${a.bus.health().published} payloads for 6002 events`)
  t.ok(a.bus.health().fresh && b.bus.health().fresh, 'both buses fresh')
})

t.test('a dropped LISTEN connection comes back, and what changed meanwhile is not served from the cache', async t => {
  const proxy = await startSharedProxy(t)
  const a = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl })
  // B waits at least ~0.8 s before reconnecting: long enough to act inside the gap
  const b = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl, databaseUrl: a.databaseUrl, fleet: { reconnectMinMs: 1000 } })
  const admin = await userToken(a.db, 'admin', { admin: true })
  const whoami = async (token: string) => (await asToken(b, token, '/hub/api/user')).status
  const lost = await userToken(a.db, 'lost')       // deleted behind every hub's back: no notification at all
  const revoked = await userToken(a.db, 'revoked') // revoked through A while B cannot hear it
  t.equal(await whoami(lost.token), 200, 'warm on B')
  t.equal(await whoami(revoked.token), 200, 'warm on B')

  t.equal(await cutConnection(a.db, b, 'listen'), 1, "B's listening connection terminated")
  const down = await msUntil(async () => (await fleetMetrics(b, admin.token)).get('fleethub_listen_connected') === 0, 2000, 5)
  t.ok(down >= 0, 'B reports the connection down')
  await a.db.deleteFrom('api_tokens').where('id', '=', lost.tokenId).execute()
  t.equal((await asToken(a, admin.token, `/hub/api/users/revoked/tokens/${revoked.tokenId}`, { method: 'DELETE' })).status, 204)
  t.equal(await whoami(lost.token), 403, 'while down, B reads the database instead of its cache')
  t.equal(await whoami(revoked.token), 403, 'and so refuses the revoked token too')

  const back = await msUntil(async () => {
    const m = await fleetMetrics(b, admin.token)
    return m.get('fleethub_listen_connected') === 1 && m.get('fleethub_listen_reconnects_total') === 1
  }, 10_000, 50)
  t.ok(back >= 0, `B reconnected ${back} ms later and counts one reconnect`)
  t.equal(await whoami(lost.token), 403, 'after the reconnect the old entries are gone (a 5 s TTL would still have served them)')
  t.equal(await whoami(revoked.token), 403)

  const fresh = await userToken(a.db, 'fresh')
  t.equal(await whoami(fresh.token), 200)
  const gone = await userToken(a.db, 'gone-again')
  t.equal(await whoami(gone.token), 200)
  t.equal((await asToken(a, admin.token, `/hub/api/users/gone-again/tokens/${gone.tokenId}`, { method: 'DELETE' })).status, 204)
  const ms = await msUntil(async () => await whoami(gone.token) === 403, 3000)
  t.ok(ms >= 0 && ms < 1000, `notifications flow again: a revocation through A is refused on B ${ms} ms later`)
  t.equal(await whoami(fresh.token), 200, 'and the cache serves again')
})
