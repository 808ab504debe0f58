/**
 * The identity cache in front of token and session checks: invalidation by user, session, server,
 * OAuth client or token drops exactly the identities carrying that id (through an index, not a scan
 * of the whole cache), and leaves every other cached identity in place.
 */
import t from 'tap'
import { RequestAuth } from '../../hub/src/auth/request-auth.js'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { createTestDatabase } from '../../test/helpers/db.js'

t.test('invalidation drops exactly the matching cached identities', async t => {
  const { db } = await createTestDatabase(t)
  // a long TTL: every drop below comes from invalidate(), never from expiry
  const auth = new RequestAuth(db, { cacheTtlMs: 60_000 })
  const [alice, bob] = await db.insertInto('users').values([{ name: 'alice' }, { name: 'bob' }]).returning('id').execute()
  const server = await db.insertInto('servers').values({ user_id: alice!.id, name: '', state: 'running' }).returning('id').executeTakeFirstOrThrow()
  await db.insertInto('oauth_clients').values({ id: 'jupyterhub-user-alice', secret_hash: 'x', redirect_uri: '/user/alice/oauth_callback', description: 'd', server_id: server.id }).execute()
  const session = await db.insertInto('sessions').values({ id: 'sess-alice', user_id: alice!.id, expires_at: new Date(Date.now() + 3600_000) }).returning('id').executeTakeFirstOrThrow()

  const mint = async (spec: Parameters<typeof createToken>[1]) => (await createToken(db, spec)).token
  const tokens = {
    serverToken: await mint({ kind: 'server', userId: alice!.id, serverId: server.id, scopes: ['inherit'] }),
    oauthToken: await mint({ kind: 'oauth', userId: alice!.id, oauthClientId: 'jupyterhub-user-alice', sessionId: session.id, scopes: ['inherit'] }),
    aliceApi: await mint({ kind: 'api', userId: alice!.id, scopes: ['inherit'] }),
    bobApi: await mint({ kind: 'api', userId: bob!.id, scopes: ['inherit'] }),
  }
  for (const token of Object.values(tokens)) t.ok(await auth.fromToken(token), 'resolves and is cached')
  t.equal(auth.cachedIdentities, 4)

  // With the rows gone, a cached identity still answers; a dropped one is looked up again and is gone.
  await db.deleteFrom('api_tokens').execute()
  const cached = async () => Object.fromEntries(await Promise.all(Object.entries(tokens).map(async ([k, v]) => [k, (await auth.fromToken(v)) !== undefined])))

  auth.invalidate({ serverId: server.id, oauthClientId: 'jupyterhub-user-alice' })
  t.same(await cached(), { serverToken: false, oauthToken: false, aliceApi: true, bobApi: true }, 'a stopped server drops its own token and the tokens issued through its client')

  auth.invalidate({ sessionId: 'no-such-session' })
  t.same(await cached(), { serverToken: false, oauthToken: false, aliceApi: true, bobApi: true }, 'an unknown id drops nothing')

  auth.invalidate({ userId: alice!.id })
  t.same(await cached(), { serverToken: false, oauthToken: false, aliceApi: false, bobApi: true }, "a user change drops only that user's identities")

  auth.invalidateAll()
  t.same(await cached(), { serverToken: false, oauthToken: false, aliceApi: false, bobApi: false }, 'invalidateAll drops everything')
})

t.test('a session identity is dropped by its session id (logout)', async t => {
  const { db } = await createTestDatabase(t)
  const auth = new RequestAuth(db, { cacheTtlMs: 60_000 })
  const user = await db.insertInto('users').values({ name: 'carol' }).returning('id').executeTakeFirstOrThrow()
  await db.insertInto('sessions').values({ id: 'sess-carol', user_id: user.id, expires_at: new Date(Date.now() + 3600_000) }).execute()
  const oauth = (await createToken(db, { kind: 'oauth', userId: user.id, sessionId: 'sess-carol', scopes: ['inherit'] })).token
  t.ok(await auth.fromToken(oauth))
  await db.deleteFrom('sessions').execute() // cascades to the token
  t.ok(await auth.fromToken(oauth), 'still cached')
  auth.invalidate({ sessionId: 'sess-carol' })
  t.equal(await auth.fromToken(oauth), undefined, 'gone after logout invalidation')
  t.equal(auth.cachedIdentities, 1, 'the negative answer is cached; the dropped entry and its index are gone')
})

t.test('expired identities leave the cache as new ones arrive, not only at MAX_CACHE (issue #16)', async t => {
  const { db } = await createTestDatabase(t)
  const auth = new RequestAuth(db, { cacheTtlMs: 3000 })
  const user = await db.insertInto('users').values({ name: 'dave' }).returning('id').executeTakeFirstOrThrow()
  const tokens = await Promise.all(Array.from({ length: 20 }, async () => (await createToken(db, { kind: 'api', userId: user.id, scopes: ['inherit'] })).token))
  for (const token of tokens) t.ok(await auth.fromToken(token))
  t.equal(await auth.fromToken('no-such-token'), undefined)
  t.equal(auth.cachedIdentities, 21, 'each token once, and the negative answer')
  await new Promise(r => setTimeout(r, 3100))
  // none of those keys is asked again (a quiet browser, a server token used every few minutes)
  const late = (await createToken(db, { kind: 'api', userId: user.id, scopes: ['inherit'] })).token
  t.ok(await auth.fromToken(late))
  t.equal(auth.cachedIdentities, 1, 'only the live entry is left')
  auth.invalidate({ userId: user.id })
  t.equal(auth.cachedIdentities, 0, 'and its index entries were kept right: invalidation still finds it')
})
