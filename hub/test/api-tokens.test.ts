/**
 * /hub/api/users/:name/tokens over real HTTP against a whole hub (real Postgres, the proxy child):
 * shapes, every error status and message, scope denial, minting limits, revocation.
 */
import t from 'tap'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'
import { createToken } from '../src/tokens/token.repository.js'
import { ensureUser } from '../src/users/user.repository.js'

interface Reply { status: number; body: any; headers: Headers }

/** The contract's list (§7.2): a user token with the user's full default scopes. */
const aliceFull = ['access:servers!user=alice', 'delete:servers!user=alice', 'read:servers!user=alice', 'read:tokens!user=alice',
  'read:users!user=alice', 'read:users:activity!user=alice', 'read:users:groups!user=alice', 'read:users:name!user=alice',
  'servers!user=alice', 'tokens!user=alice', 'users:activity!user=alice']

const MODEL_KEYS = ['created', 'expires_at', 'id', 'kind', 'last_activity', 'note', 'oauth_client', 'roles', 'scopes', 'session_id', 'user']

t.test('tokens API', async t => {
  const hub = await startTestHub(t, { args: ['--admin-users', 'admin'] })
  const base = hub.publicUrl
  const api = async (token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
    const res = await fetch(`${base}/hub/api${path}`, {
      method, headers: { ...(token ? { authorization: `token ${token}` } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers }
  }

  const alice = await ensureUser(hub.db, 'alice')
  const bob = await ensureUser(hub.db, 'bob')
  const admin = await ensureUser(hub.db, 'admin', { admin: true })
  const aliceTok = await createToken(hub.db, { kind: 'api', userId: alice.id, scopes: ['inherit'], note: 'alice full' })
  const bobTok = await createToken(hub.db, { kind: 'api', userId: bob.id, scopes: ['inherit'] })
  const adminTok = await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })
  const nameOnly = await createToken(hub.db, { kind: 'api', userId: alice.id, scopes: ['read:users:name!user=alice'] })
  const mintOnly = await createToken(hub.db, { kind: 'api', userId: alice.id, scopes: ['tokens!user=alice', 'read:users:name!user=alice'] })
  const serverTok = await createToken(hub.db, { kind: 'server', userId: alice.id, scopes: ['users:activity!user=alice'], note: 'Server at /user/alice/' })

  await t.test('list: every token of the user, API and server ones, in the documented shape', async t => {
    const r = await api(aliceTok.token, 'GET', '/users/alice/tokens')
    t.equal(r.status, 200)
    t.same(Object.keys(r.body), ['api_tokens'])
    const ids = r.body.api_tokens.map((m: any) => m.id)
    t.same(ids, [aliceTok.id, nameOnly.id, mintOnly.id, serverTok.id].map(i => `a${i}`), 'all of alice\'s, none of bob\'s, in id order')
    const full = r.body.api_tokens[0]
    t.same(Object.keys(full).sort(), MODEL_KEYS)
    t.match(full, { user: 'alice', kind: 'api_token', roles: [], note: 'alice full', session_id: null, oauth_client: 'JupyterHub', expires_at: null, last_activity: null })
    t.same(full.scopes, aliceFull, 'inherit shows the owner\'s expanded scopes')
    t.match(full.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'JupyterHub timestamp format')
    const server = r.body.api_tokens[3]
    t.equal(server.oauth_client, 'Server at /user/alice/', 'a server token names its client')
    t.same(server.scopes, ['read:users:activity!user=alice', 'users:activity!user=alice'])
  })

  await t.test('create: 201 with the secret once, usable at once', async t => {
    const before = Date.now()
    const r = await api(aliceTok.token, 'POST', '/users/alice/tokens', { note: 'contract-test', expires_in: 3600 })
    t.equal(r.status, 201)
    t.same(Object.keys(r.body).sort(), [...MODEL_KEYS, 'token'].sort())
    t.match(r.body.token, /^[0-9a-f]{32}$/)
    t.match(r.body, { user: 'alice', kind: 'api_token', note: 'contract-test', oauth_client: 'JupyterHub', roles: [] })
    t.match(r.body.id, /^a\d+$/)
    const expires = Date.parse(r.body.expires_at)
    t.ok(expires >= before + 3_599_000 && expires <= Date.now() + 3_601_000, 'expires_in becomes expires_at')
    t.same(r.body.scopes, aliceFull, 'no scopes: inherits the owner\'s')
    const who = await api(r.body.token, 'GET', '/user')
    t.equal(who.status, 200)
    t.equal(who.body.name, 'alice')
    const row = await hub.db.selectFrom('api_tokens').select(['scopes', 'hash']).where('id', '=', r.body.id.slice(1)).executeTakeFirstOrThrow()
    t.same(row.scopes, ['inherit'], 'stored as inherit')
    t.not(row.hash, r.body.token, 'the secret is not stored')
    const listed = await api(aliceTok.token, 'GET', '/users/alice/tokens')
    t.notOk(listed.body.api_tokens.some((m: any) => 'token' in m), 'the secret is never listed')
  })

  await t.test('create without a body, and with an empty JSON object', async t => {
    const none = await api(aliceTok.token, 'POST', '/users/alice/tokens')
    t.equal(none.status, 201)
    t.equal(none.body.note, 'Requested via api')
    t.equal(none.body.expires_at, null)
    const empty = await api(aliceTok.token, 'POST', '/users/alice/tokens', {})
    t.equal(empty.status, 201)
  })

  await t.test('create with scopes: only those, expanded', async t => {
    const r = await api(aliceTok.token, 'POST', '/users/alice/tokens', { note: 'scoped', scopes: ['read:users:name!user=alice'] })
    t.equal(r.status, 201)
    t.same(r.body.scopes, ['read:users:name!user=alice'])
    const who = await api(r.body.token, 'GET', '/user')
    t.equal(who.status, 200)
    t.same(who.body.scopes, ['read:users:name!user=alice'])
    const denied = await api(r.body.token, 'GET', '/users/alice/tokens')
    t.equal(denied.status, 403, 'the scoped token cannot list tokens')
    t.equal(denied.body.message, 'Action is not authorized with current scopes; requires any of [read:tokens]')

    const expanded = await api(aliceTok.token, 'POST', '/users/alice/tokens', { scopes: ['read:users!user'] })
    t.equal(expanded.status, 201)
    t.same(expanded.body.scopes, ['read:users!user=alice', 'read:users:activity!user=alice', 'read:users:groups!user=alice', 'read:users:name!user=alice'],
      'the !user self-filter resolves to the owner and the scope expands')

    const byRole = await api(aliceTok.token, 'POST', '/users/alice/tokens', { roles: ['user'] })
    t.equal(byRole.status, 201)
    t.same(byRole.body.roles, ['user'])
    t.same(byRole.body.scopes, aliceFull, 'a role grants its scopes')
  })

  const badCreates: Array<[string, unknown, number, string, string?]> = [
    ['scopes the owner lacks', { scopes: ['admin:users'] }, 400, 'Not assigning requested scopes admin:auth_state,admin:users,delete:users,list:users,read:roles:users,read:users,read:users:activity,read:users:groups,read:users:name,users,users:activity not held by User alice', 'HUB_SCOPES_NOT_HELD'],
    ['another user\'s scopes', { scopes: ['read:users!user=bob'] }, 400, 'Not assigning requested scopes read:users!user=bob,read:users:activity!user=bob,read:users:groups!user=bob,read:users:name!user=bob not held by User alice', 'HUB_SCOPES_NOT_HELD'],
    ['a role whose scopes the owner lacks', { roles: ['admin'] }, 400, 'Not assigning requested scopes', 'HUB_SCOPES_NOT_HELD'],
    ['an unknown role', { roles: ['nosuchrole'] }, 400, 'No such role: nosuchrole', 'HUB_NO_SUCH_ROLE'],
    ['an unknown scope', { scopes: ['frobnicate'] }, 400, 'Unknown scope: frobnicate', 'HUB_BAD_SCOPE'],
    ['a malformed filter', { scopes: ['read:users!nobody=x'] }, 400, 'Bad scope filter: read:users!nobody=x', 'HUB_BAD_SCOPE'],
    ['scopes not a list', { scopes: 'read:users' }, 400, 'scopes must be a list of strings'],
    ['roles not strings', { roles: [1] }, 400, 'roles must be a list of strings'],
    ['negative expires_in', { expires_in: -5 }, 400, 'expires_in must be a positive integer'],
    ['zero expires_in', { expires_in: 0 }, 400, 'expires_in must be a positive integer'],
    ['fractional expires_in', { expires_in: 1.5 }, 400, 'expires_in must be a positive integer'],
    ['string expires_in', { expires_in: '60' }, 400, 'expires_in must be a positive integer'],
    ['huge expires_in', { expires_in: 1e15 }, 400, 'expires_in must be a positive integer'],
    ['a note too long', { note: 'x'.repeat(1001) }, 400, 'note must be at most 1000 characters'],
    ['a note not a string', { note: 5 }, 400, 'note must be a string'],
    ['an unknown key', { note: 'n', scope: ['x'] }, 400, 'Invalid JSON keys: scope'],
    ['a list body', [1, 2], 400, 'Body must be a JSON dict or empty'],
    ['a string body', '"hello"', 400, 'Body must be a JSON dict or empty'],
    ['invalid JSON', '{"note": ', 400, 'Invalid JSON in body of request', 'HUB_BAD_JSON'],
    ['a body over 64 kB', { note: 'x'.repeat(70_000) }, 413, 'Request body larger than', 'HUB_BODY_TOO_LARGE'],
  ]
  await t.test('create: every refusal, and nothing stored', async t => {
    const count = async () => Number((await hub.db.selectFrom('api_tokens').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
    const before = await count()
    for (const [what, body, status, message, code] of badCreates) {
      const r = await api(aliceTok.token, 'POST', '/users/alice/tokens', body)
      t.equal(r.status, status, `${what}: status`)
      t.ok(String(r.body?.message).startsWith(message), `${what}: message '${r.body?.message}'`)
      t.equal(r.body?.status, status, `${what}: body status`)
      if (code) t.equal(r.body?.code, code, `${what}: code`)
    }
    t.equal(await count(), before, 'no token row was written')
  })

  await t.test('a token cannot mint more than it holds itself', async t => {
    const more = await api(mintOnly.token, 'POST', '/users/alice/tokens', { scopes: ['read:users!user=alice'] })
    t.equal(more.status, 400)
    t.match(more.body.message, /^Not assigning requested scopes read:users!user=alice,.* not held by User alice$/)
    const inherit = await api(mintOnly.token, 'POST', '/users/alice/tokens')
    t.equal(inherit.status, 400, 'inheriting the owner\'s full scopes would be an escalation')
    t.match(inherit.body.message, /servers!user=alice/)
    const same = await api(mintOnly.token, 'POST', '/users/alice/tokens', { scopes: ['read:users:name!user=alice'] })
    t.equal(same.status, 201, 'what it holds it can pass on')
  })

  await t.test('read one token by a<N> or N; absent, foreign or malformed ids are 404', async t => {
    const byA = await api(aliceTok.token, 'GET', `/users/alice/tokens/a${nameOnly.id}`)
    t.equal(byA.status, 200)
    t.equal(byA.body.id, `a${nameOnly.id}`)
    t.same(byA.body.scopes, ['read:users:name!user=alice'])
    const byN = await api(aliceTok.token, 'GET', `/users/alice/tokens/${nameOnly.id}`)
    t.same(byN.body, byA.body)
    for (const id of ['a999999999', `a${bobTok.id}`, 'abc', 'a', 'a-1', '1e3', 'a99999999999999999999']) {
      const r = await api(aliceTok.token, 'GET', `/users/alice/tokens/${id}`)
      t.equal(r.status, 404, `${id}: 404`)
      t.same(r.body, { status: 404, message: 'Token not found', code: 'HUB_TOKEN_NOT_FOUND' }, `${id}: body`)
    }
    const del = await api(aliceTok.token, 'DELETE', `/users/alice/tokens/a${bobTok.id}`)
    t.equal(del.status, 404, 'cannot delete bob\'s token through alice')
    t.equal((await api(bobTok.token, 'GET', '/user')).status, 200, 'bob\'s token still works')
  })

  await t.test('scope denial: other users, no token, the wrong scope', async t => {
    const noAccess = { status: 404, message: 'No access to resources or resources not found', code: 'HUB_NO_ACCESS' }
    const cases: Array<[string, string | undefined, string, string, number, Record<string, unknown>]> = [
      // alice holds read:tokens/tokens only for herself: JupyterHub answers 404, as for a missing user
      ['alice lists bob\'s', aliceTok.token, 'GET', '/users/bob/tokens', 404, noAccess],
      ['alice mints for bob', aliceTok.token, 'POST', '/users/bob/tokens', 404, noAccess],
      ['alice reads bob\'s token', aliceTok.token, 'GET', `/users/bob/tokens/a${bobTok.id}`, 404, noAccess],
      ['alice deletes bob\'s token', aliceTok.token, 'DELETE', `/users/bob/tokens/a${bobTok.id}`, 404, noAccess],
      ['alice probes a missing user', aliceTok.token, 'GET', '/users/nosuchuser/tokens', 404, noAccess],
      // holding no tokens scope at all: 403 naming it
      ['name-only token lists', nameOnly.token, 'GET', '/users/alice/tokens', 403, { message: 'Action is not authorized with current scopes; requires any of [read:tokens]', code: 'HUB_MISSING_SCOPE' }],
      ['name-only token mints', nameOnly.token, 'POST', '/users/alice/tokens', 403, { message: 'Action is not authorized with current scopes; requires any of [tokens]' }],
      ['server token deletes', serverTok.token, 'DELETE', `/users/alice/tokens/a${aliceTok.id}`, 403, { message: 'Action is not authorized with current scopes; requires any of [tokens]' }],
      ['no token', undefined, 'GET', '/users/alice/tokens', 403, { status: 403, message: 'Forbidden' }],
      ['a wrong token', '0123456789abcdef0123456789abcdef', 'GET', '/users/alice/tokens', 403, { message: 'Forbidden' }],
      ['?token= is not accepted', undefined, 'GET', `/users/alice/tokens?token=${aliceTok.token}`, 403, { message: 'Forbidden' }],
      ['admin, missing user', adminTok.token, 'GET', '/users/nosuchuser/tokens', 404, { message: 'No such user: \'nosuchuser\'', code: 'HUB_USER_NOT_FOUND' }],
    ]
    for (const [what, token, method, path, status, body] of cases) {
      const r = await api(token, method, path)
      t.equal(r.status, status, `${what}: status`)
      t.match(r.body, body, `${what}: body`)
    }
    t.equal((await api(bobTok.token, 'GET', '/user')).status, 200, 'bob\'s token survived the attempts')
  })

  await t.test('revocation is immediate: 204, then 403 everywhere, then 404', async t => {
    const made = await api(aliceTok.token, 'POST', '/users/alice/tokens', { note: 'short-lived' })
    t.equal(made.status, 201)
    t.equal((await api(made.body.token, 'GET', '/user')).status, 200, 'works (and is now cached)')
    const del = await api(aliceTok.token, 'DELETE', `/users/alice/tokens/${made.body.id}`)
    t.equal(del.status, 204)
    t.equal(del.headers.get('content-length') ?? '0', '0')
    const after = await api(made.body.token, 'GET', '/user')
    t.equal(after.status, 403, 'refused on the very next request')
    t.same(after.body, { status: 403, message: 'Forbidden', code: 'HUB_FORBIDDEN' })
    t.equal((await api(made.body.token, 'GET', '/users/alice/tokens')).status, 403)
    const again = await api(aliceTok.token, 'DELETE', `/users/alice/tokens/${made.body.id}`)
    t.equal(again.status, 404)
    t.equal(again.body.message, 'Token not found')
    t.equal((await api(aliceTok.token, 'GET', `/users/alice/tokens/${made.body.id}`)).status, 404)
  })

  await t.test('a token deletes itself', async t => {
    const made = await api(aliceTok.token, 'POST', '/users/alice/tokens')
    const del = await api(made.body.token, 'DELETE', `/users/alice/tokens/${made.body.id.slice(1)}`)
    t.equal(del.status, 204, 'plain N works in the path too')
    t.equal((await api(made.body.token, 'GET', '/user')).status, 403)
  })

  await t.test('an admin manages anyone\'s tokens', async t => {
    const list = await api(adminTok.token, 'GET', '/users/bob/tokens')
    t.equal(list.status, 200)
    t.same(list.body.api_tokens.map((m: any) => m.id), [`a${bobTok.id}`])
    const made = await api(adminTok.token, 'POST', '/users/bob/tokens', { scopes: ['read:servers!user=bob'] })
    t.equal(made.status, 201)
    t.equal(made.body.user, 'bob')
    t.equal(made.body.note, 'Requested via api by user admin', 'the note says who minted it')
    t.same(made.body.scopes, ['read:servers!user=bob', 'read:users:name!user=bob'])
    const noteless = await api(adminTok.token, 'POST', '/users/bob/tokens')
    t.same(noteless.body.scopes, aliceFull.map(s => s.replace('alice', 'bob')), 'an admin\'s inherit token for bob holds bob\'s scopes, not the admin\'s')
    t.equal((await api(adminTok.token, 'GET', `/users/bob/tokens/${made.body.id}`)).status, 200)
    t.equal((await api(adminTok.token, 'DELETE', `/users/bob/tokens/${made.body.id}`)).status, 204)
    t.equal((await api(made.body.token, 'GET', '/user')).status, 403)
    const tooMuch = await api(adminTok.token, 'POST', '/users/bob/tokens', { scopes: ['admin:users'] })
    t.equal(tooMuch.status, 400, 'even an admin cannot give bob\'s token more than bob holds')
    t.match(tooMuch.body.message, /not held by User bob$/)
  })

  await t.test('an admin in the browser: session cookie with a same-origin Referer', async t => {
    const browser = new Browser(base)
    const login = await browser.login('admin', DEV_PASSWORD)
    t.equal(login.status, 200)
    const referer = `${base}/hub/token`
    const made = await browser.fetch('/hub/api/users/alice/tokens', {
      method: 'POST', body: JSON.stringify({ note: 'from the browser' }), headers: { referer, 'content-type': 'application/json' },
    })
    t.equal(made.status, 201)
    const body = await made.json() as any
    t.equal(body.note, 'from the browser')
    t.equal((await api(body.token, 'GET', '/user')).body.name, 'alice')
    const list = await browser.fetch('/hub/api/users/alice/tokens', { headers: { referer } })
    t.equal(list.status, 200)
    const crossSite = await browser.fetch('/hub/api/users/alice/tokens', { method: 'POST', headers: { referer: 'http://evil.example/' } })
    t.equal(crossSite.status, 403, 'a cookie from another site\'s page is anonymous')
    await crossSite.body?.cancel()
    const noReferer = await browser.fetch('/hub/api/users/alice/tokens')
    t.equal(noReferer.status, 403)
    await noReferer.body?.cancel()
  })
})
