/**
 * The OIDC authenticator's pure parts: its configuration (file → env → flags, clear errors), the
 * mapping from claims to a username, groups, access and admin, and the signed state cookie.
 * Plus discovery against an address where nothing listens: a 502, not an exception.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ConfigError, parseHubConfig } from '../../hub/src/config.js'
import { claimAt, decide, groupsFrom, usernameFrom } from '../../hub/src/auth/oidc-claims.js'
import { createOidcAuthenticator, decodeState, encodeState } from '../../hub/src/auth/oidc-authenticator.js'
import type { OidcConfig } from '../../hub/src/auth/oidc-config.js'
import { HttpError } from '../../hub/src/errors.js'
import { createLogger } from '../../core/src/log.js'

const BASE = ['--authenticator', 'oidc', '--oidc-issuer', 'https://login.uni.example/realms/main', '--oidc-client-id', 'hub', '--oidc-allowed-groups', 'students']

function problems(argv: string[], env: Record<string, string> = {}): string {
  try { parseHubConfig(argv, env); return '' } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.message
  }
}

t.test('config: defaults, and where each value comes from', async t => {
  const c = parseHubConfig(BASE, { FLEETHUB_OIDC_CLIENT_SECRET: 's3cret' })
  t.equal(c.authenticator, 'oidc')
  t.match(c.oidc, {
    issuer: 'https://login.uni.example/realms/main', clientId: 'hub', clientSecret: 's3cret', redirectUrl: undefined,
    scopes: ['openid', 'profile', 'email'], usernameClaim: 'preferred_username', normalizeUsername: true, groupsClaim: 'groups',
    allowedGroups: ['students'], allowedUsers: [], adminGroups: [], allowAll: false, autoLogin: false, allowInsecureHttp: false, providerName: 'OpenID Connect',
  })
  t.ok(Object.isFrozen(c.oidc))
  t.equal(parseHubConfig(['--oidc-issuer', 'x'], {}).oidc, undefined, 'only parsed (and checked) with --authenticator oidc')

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-oidc-config-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'hub.json')
  await fs.writeFile(file, JSON.stringify({ authenticator: 'oidc', oidc: {
    issuer: 'https://file.example', clientId: 'from-file', clientSecret: 'file-secret', scopes: ['openid', 'groups'],
    usernameClaim: 'email', usernameDomain: '@Uni.Example', allowedUsers: ['ada'], adminGroups: ['/staff'], groupsClaim: 'realm_access.roles', autoLogin: true,
  } }))
  const f = parseHubConfig(['--config', file], {})
  t.match(f.oidc, { issuer: 'https://file.example', clientId: 'from-file', clientSecret: 'file-secret', scopes: ['openid', 'groups'], usernameClaim: 'email',
    usernameDomain: 'uni.example', allowedUsers: ['ada'], adminGroups: ['/staff'], groupsClaim: 'realm_access.roles', autoLogin: true })
  const g = parseHubConfig(['--config', file, '--oidc-client-id', 'from-flag'], { FLEETHUB_OIDC_ISSUER: 'https://env.example', FLEETHUB_OIDC_CLIENT_ID: 'from-env', FLEETHUB_OIDC_CLIENT_SECRET: 'env-secret' })
  t.match(g.oidc, { issuer: 'https://env.example', clientId: 'from-flag', clientSecret: 'env-secret' }, 'flags over env over the file')
})

t.test('config: clear errors, all at once', async t => {
  const none = problems(['--authenticator', 'oidc'])
  t.match(none, /oidc\.issuer: required/)
  t.match(none, /oidc\.clientId: required/)
  t.match(none, /nobody could sign in; set allowedUsers, allowedGroups or adminGroups, or allowAll: true/)
  t.match(problems([...BASE.slice(0, 2), '--oidc-issuer', 'http://idp.example', ...BASE.slice(4)]), /plain http; use https/)
  t.match(problems([...BASE.slice(0, 2), '--oidc-issuer', 'http://idp.example', ...BASE.slice(4), '--oidc-allow-insecure-http']), /only on a loopback address/)
  t.equal(problems([...BASE.slice(0, 2), '--oidc-issuer', 'http://127.0.0.1:9999', ...BASE.slice(4), '--oidc-allow-insecure-http']), '', 'loopback http with the dev flag is fine')
  t.match(problems([...BASE, '--oidc-issuer', 'not a url']), /oidc\.issuer: not a URL/)
  t.match(problems([...BASE, '--oidc-scopes', 'profile email']), /must include 'openid'/)
  t.match(problems([...BASE, '--oidc-username-claim', 'a b']), /oidc\.usernameClaim: 'a b' is not a claim name/)
  t.match(problems([...BASE, '--oidc-redirect-url', 'ftp://x']), /oidc\.redirectUrl: expected an https:\/\/ URL/)
  t.match(problems(BASE, { FLEETHUB_OIDC_STATE_SECRET: 'short' }), /at least 16 characters/)
  t.match(problems([...BASE, '--oidc-client-secret', 'x']), /Unknown option '--oidc-client-secret'/, 'the secret is never a flag (it would show in ps)')
  t.equal(problems([...BASE.slice(0, 6), '--oidc-allow-all']), '', 'allowAll is an explicit choice')
})

const O: OidcConfig = parseHubConfig([...BASE, '--oidc-admin-groups', 'hub-admins'], {}).oidc!

t.test('claims: usernames', async t => {
  t.same(usernameFrom({ preferred_username: ' Ada.Lovelace ' }, O), { name: 'ada.lovelace' }, 'trimmed and lowercased')
  t.match(usernameFrom({ preferred_username: 'Ada' }, { ...O, normalizeUsername: false }), { error: /cannot be used here/ }, 'without normalising, hub rules still apply')
  t.match(usernameFrom({ email: 'x' }, O), { error: /did not send the 'preferred_username' claim/ })
  t.match(usernameFrom({ preferred_username: 42 }, O), { error: /did not send/ })
  const domain = { ...O, usernameDomain: 'uni.example' }
  t.same(usernameFrom({ preferred_username: 'Ada@UNI.example' }, domain), { name: 'ada' }, 'the institution domain is stripped')
  t.match(usernameFrom({ preferred_username: 'ada@evil.example' }, domain), { error: /Only accounts in uni.example/ }, 'another domain is refused, not stripped')
  t.match(usernameFrom({ preferred_username: 'ada' }, domain), { error: /Only accounts in uni.example/ })
  t.match(usernameFrom({ preferred_username: 'a/b' }, O), { error: /cannot be used here/ }, 'a name unsafe in URLs is refused')
})

t.test('claims: groups from flat, nested and odd claims', async t => {
  t.equal(claimAt({ realm_access: { roles: ['a'] } }, 'realm_access.roles')?.toString(), 'a')
  t.same(claimAt({ 'https://x.example/groups': ['g'] }, 'https://x.example/groups'), ['g'], 'a literal key with dots (namespaced claim)')
  t.equal(claimAt({ a: ['x'] }, 'a.0'), undefined, 'no indexing into arrays')
  t.same(groupsFrom({ groups: ['a', 7, 'b'] }, 'groups'), ['a', 'b'], 'non-strings dropped')
  t.same(groupsFrom({ groups: 'solo' }, 'groups'), ['solo'], 'a single group as a string')
  t.same(groupsFrom({}, 'groups'), [])
})

t.test('claims: who may sign in, who is admin', async t => {
  const admins = new Set<string>()
  t.match(decide({ preferred_username: 'stu', groups: ['students'] }, O, admins), { ok: true, name: 'stu', admin: false })
  t.match(decide({ preferred_username: 'boss', groups: ['hub-admins'] }, O, admins), { ok: true, admin: true }, 'admin groups are allowed in')
  t.match(decide({ preferred_username: 'eve', groups: ['other'] }, O, admins), { ok: false, status: 403, code: 'HUB_OIDC_NOT_ALLOWED', name: 'eve' })
  t.match(decide({ preferred_username: 'eve' }, O, new Set(['eve'])), { ok: true, admin: true }, 'configured hub admins may sign in')
  t.match(decide({ preferred_username: 'eve' }, { ...O, allowedUsers: ['eve'] }, admins), { ok: true })
  t.match(decide({ preferred_username: 'eve' }, { ...O, allowAll: true }, admins), { ok: true })
  t.match(decide({ preferred_username: 'stu', groups: ['students'] }, { ...O, adminGroups: [] }, admins), { ok: true, admin: undefined }, 'no admin groups: the hub keeps its own admin flag')
  t.match(decide({ groups: ['students'] }, O, admins), { ok: false, code: 'HUB_OIDC_BAD_USERNAME' })
})

t.test('state cookie: signed, expiring, tamper-evident', async t => {
  const key = Buffer.alloc(32, 7)
  const s = { state: 'st', nonce: 'no', verifier: 've', next: '/hub/token', exp: 2000 }
  const c = encodeState(key, s)
  t.same(decodeState(key, c, 1000), s)
  t.equal(decodeState(key, c, 2001), undefined, 'expired')
  t.equal(decodeState(Buffer.alloc(32, 8), c, 1000), undefined, 'another key')
  const [payload, mac] = c.split('.')
  const forged = Buffer.from(JSON.stringify({ ...s, next: 'https://evil.example' })).toString('base64url')
  t.equal(decodeState(key, `${forged}.${mac}`, 1000), undefined, 'a changed payload')
  t.equal(decodeState(key, `${payload}.${mac}.x`, 1000), undefined)
  t.equal(decodeState(key, undefined), undefined)
  t.equal(decodeState(key, 'x'.repeat(5000)), undefined, 'oversized')
})

t.test('discovery: nothing listening is a 502 HttpError, and it is retried next time', async t => {
  const server = http.createServer()
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  await new Promise(r => server.close(r)) // a port nobody listens on
  const config = { ...O, issuer: `http://127.0.0.1:${port}`, allowInsecureHttp: true }
  const oidc = createOidcAuthenticator(config, { log: createLogger('silent'), redirectUrl: 'http://127.0.0.1:1/hub/oauth_callback' })
  const started = Date.now()
  const err = await oidc.begin('').then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof HttpError)
  t.match(err, { statusCode: 502, code: 'HUB_OIDC_UNREACHABLE', message: /cannot be reached/ })
  t.ok(Date.now() - started < 5000, 'fails fast (one short retry)')
  const again = await oidc.begin('').then(() => undefined, (e: unknown) => e)
  t.match(again, { statusCode: 502 }, 'a failure is not cached as success')
  t.match(await oidc.authenticate('a', 'b'), { ok: false, error: /signs in with OpenID Connect/ }, 'no password sign-in')
})
