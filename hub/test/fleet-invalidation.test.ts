/**
 * Two hubs on one database (issue #14), a security property: a credential taken away on one hub
 * stops working on every hub within a second. The attack: an identity cached on hub B (warmed by
 * a request that succeeded there) keeps working after it was revoked through hub A, for as long
 * as B's cache lives (5 s), unless A's invalidation reaches B. Each kind is tested: a revoked
 * token, a logout (deleted session, with its cookie), a deleted user, a removed admin right; the
 * control case shows B really serves from its cache, so the refusals below come from the
 * invalidation and not from a cold cache.
 */
import t from 'tap'
import { SESSION_COOKIE } from '../../hub/src/auth/cookies.js'
import { createSession } from '../../hub/src/auth/session.repository.js'
import { asToken, msUntil, startFleetHub, startSharedProxy, userToken } from '../../test/helpers/fleet.js'

const BOUND_MS = 1000

t.test('what one hub takes away, the other refuses within a second', async t => {
  const proxy = await startSharedProxy(t)
  const a = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl })
  const b = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl, databaseUrl: a.databaseUrl })
  const admin = await userToken(a.db, 'admin', { admin: true })
  const whoami = async (token: string) => (await asToken(b, token, '/hub/api/user')).status

  t.test('control: a change that no hub announces is served from B\'s cache', async t => {
    const u = await userToken(a.db, 'control')
    t.equal(await whoami(u.token), 200, 'warm on B')
    await a.db.deleteFrom('api_tokens').where('id', '=', u.tokenId).execute()
    t.equal(await whoami(u.token), 200, 'still answered from the cache: the cases below test the invalidation, not a cold cache')
  })

  t.test('a revoked token', async t => {
    const u = await userToken(a.db, 'tok')
    t.equal(await whoami(u.token), 200, 'warm on B')
    const res = await asToken(a, admin.token, `/hub/api/users/tok/tokens/${u.tokenId}`, { method: 'DELETE' })
    t.equal(res.status, 204, 'revoked through A')
    const ms = await msUntil(async () => await whoami(u.token) === 403, 3000)
    t.ok(ms >= 0 && ms < BOUND_MS, `B refuses the token ${ms} ms after A revoked it`)
  })

  t.test('a logout (the session deleted, its cookie replayed)', async t => {
    const u = await userToken(a.db, 'sess')
    const { cookie } = await createSession(a.db, u.userId, 3600)
    const home = async () => (await fetch(`${b.hubUrl}/hub/home`, { redirect: 'manual', headers: { cookie: `${SESSION_COOKIE}=${cookie}` } })).status
    t.equal(await home(), 200, 'signed in on B')
    const out = await fetch(`${a.hubUrl}/hub/logout`, { redirect: 'manual', headers: { cookie: `${SESSION_COOKIE}=${cookie}` } })
    t.equal(out.status, 302, 'logged out through A')
    const ms = await msUntil(async () => await home() === 302, 3000)
    t.ok(ms >= 0 && ms < BOUND_MS, `B sends the old cookie to the login page ${ms} ms after the logout`)
  })

  t.test('a deleted user', async t => {
    const u = await userToken(a.db, 'gone')
    t.equal(await whoami(u.token), 200, 'warm on B')
    const res = await asToken(a, admin.token, '/hub/api/users/gone', { method: 'DELETE' })
    t.equal(res.status, 204, 'deleted through A')
    const ms = await msUntil(async () => await whoami(u.token) === 403, 3000)
    t.ok(ms >= 0 && ms < BOUND_MS, `B refuses the deleted user's token ${ms} ms after the delete`)
  })

  t.test('a removed admin right', async t => {
    const u = await userToken(a.db, 'boss', { admin: true })
    const listUsers = async () => (await asToken(b, u.token, '/hub/api/users')).status
    t.equal(await listUsers(), 200, 'an admin on B')
    const res = await asToken(a, admin.token, '/hub/api/users/boss', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ admin: false }) })
    t.equal(res.status, 200, 'demoted through A')
    const ms = await msUntil(async () => await listUsers() === 403, 3000)
    t.ok(ms >= 0 && ms < BOUND_MS, `B refuses the admin-only listing ${ms} ms after the demotion`)
    t.equal(await whoami(u.token), 200, 'the user keeps their own access')
  })
})
