/**
 * OpenID Connect sign-in against a real OpenID provider (the `oidc-provider` package, the
 * certified reference implementation) on a loopback port: discovery, authorization code with
 * PKCE, ID token + userinfo, then the hub's own session. The provider's login step is a minimal
 * interaction handler driven over HTTP: POST /interaction/<uid>/login with an account name signs
 * that account in, POST /interaction/<uid>/deny refuses (error=access_denied).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider'
import { Browser, type BrowserResponse } from '../../test/helpers/browser.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { chromiumPath, launchChromium, screenshot } from '../../test/helpers/chromium.js'
import { missingPackage } from '../../test/helpers/requirements.js'

const CLIENT_ID = 'fleethub'
const CLIENT_SECRET = 'a-client-secret-only-the-hub-and-the-provider-know'

/** The provider's accounts: groups decide who may use the hub and who is an admin. */
const ACCOUNTS: Record<string, { preferred_username: string; email: string; groups: string[] }> = {
  alice: { preferred_username: 'alice', email: 'alice@uni.example', groups: ['students'] },
  prof: { preferred_username: 'Prof.Ada', email: 'ada@uni.example', groups: ['staff', 'hub-admins'] },
  mallory: { preferred_username: 'mallory', email: 'mallory@elsewhere.example', groups: ['visitors'] },
}

interface TestProvider { readonly issuer: string; attach(redirectUri: string): void; close(): Promise<void> }

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of req) { body += chunk; if (body.length > 10_000) throw new Error('body too large') }
  return new URLSearchParams(body)
}

function providerConfig(redirectUri: string): Configuration {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })
  return {
    clients: [{
      client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: 'test-key' } as never] },
    cookies: { keys: ['provider-cookie-key-for-tests-only'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    pkce: { required: () => true }, // S256 is the only method oidc-provider 9 accepts
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'], groups: ['groups'] },
    findAccount: async (_ctx, sub) => {
      const a = ACCOUNTS[sub]
      return a ? { accountId: sub, claims: async () => ({ sub, ...a }) } : undefined
    },
    // first-party client: no consent screen, the grant covers what was asked
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const { Grant } = ctx.oidc.provider
      const existing = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId)
      if (existing) return Grant.find(existing)
      const grant = new Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId })
      grant.addOIDCScope(String(ctx.oidc.params!.scope ?? 'openid'))
      await grant.save()
      return grant
    },
  }
}

/**
 * Listens first (the hub needs the issuer URL); the provider itself is attached once the hub's
 * redirect URI is known. Until then every request gets a 503, which is how the test sees the hub
 * cope with an unreachable provider.
 */
async function startProvider(t: { teardown(fn: () => unknown): void }): Promise<TestProvider> {
  let provider: Provider | undefined
  let handler: http.RequestListener | undefined
  const server = http.createServer((req, res) => {
    if (!provider || !handler) { res.writeHead(503).end('not yet'); return }
    const m = /^\/interaction\/([^/?]+)(?:\/(login|deny))?/.exec(req.url ?? '')
    if (!m) return handler(req, res)
    void (async () => {
      const p = provider!
      if (req.method === 'GET') {
        const details = await p.interactionDetails(req, res)
        res.writeHead(200, { 'content-type': 'text/html' }).end(
          `<form method="post" action="/interaction/${details.uid}/login"><input id="account" name="account"><button id="idp-login">Sign in</button></form>
           <form method="post" action="/interaction/${details.uid}/deny"><button id="idp-deny">Cancel</button></form>`)
      } else if (m[2] === 'login') {
        const account = (await readForm(req)).get('account') ?? ''
        if (!ACCOUNTS[account]) { res.writeHead(400).end('unknown account'); return }
        await p.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false })
      } else {
        await p.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled the sign-in' }, { mergeWithLastSubmission: false })
      }
    })().catch(err => { if (!res.headersSent) res.writeHead(500).end(String(err)) })
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => new Promise(r => { server.close(r); server.closeAllConnections() }))
  return {
    issuer,
    attach(redirectUri) {
      provider = new Provider(issuer, providerConfig(redirectUri))
      handler = provider.callback()
    },
    close: () => new Promise(r => { server.close(() => r()); server.closeAllConnections() }),
  }
}

function oidcArgs(issuer: string, extra: string[] = []): string[] {
  return ['--authenticator', 'oidc', '--oidc-issuer', issuer, '--oidc-client-id', CLIENT_ID, '--oidc-allow-insecure-http',
    '--oidc-scopes', 'openid profile email groups', '--oidc-allowed-groups', 'students', '--oidc-admin-groups', 'hub-admins',
    '--oidc-provider-name', 'Test University', ...extra]
}

/** From the hub's login page to the provider's sign-in form (an interaction URL). */
async function toProvider(b: Browser, next?: string): Promise<BrowserResponse> {
  const login = await b.go(`/hub/login${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`)
  const href = /id="oidc-login" href="([^"]+)"/.exec(login.body)?.[1]
  if (!href) throw new Error(`no sign-in button on ${login.url}: ${login.body.slice(0, 300)}`)
  return b.go(href.replace(/&amp;/g, '&'))
}

/** Signs `account` in at the provider and stops at the hub's callback URL, without visiting it. */
async function toCallback(b: Browser, hub: TestHub, account: string, action: 'login' | 'deny' = 'login'): Promise<string> {
  const form = await toProvider(b)
  let res = await b.fetch(`${form.url}/${action}`, { method: 'POST', body: new URLSearchParams({ account }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  let url = `${form.url}/${action}`
  for (let hop = 0; hop < 10; hop++) {
    const location = res.headers.get('location')
    await res.body?.cancel()
    if (!location) throw new Error(`no redirect from ${url} (${res.status})`)
    url = new URL(location, url).toString()
    if (url.startsWith(`${hub.publicUrl}/hub/oauth_callback`)) return url
    res = await b.fetch(url)
  }
  throw new Error('the provider never redirected to the hub')
}

t.test('OIDC sign-in against a real OpenID provider', async t => {
  const idp = await startProvider(t)
  const hub = await startTestHub(t, { args: oidcArgs(idp.issuer), env: { FLEETHUB_OIDC_CLIENT_SECRET: CLIENT_SECRET } })
  const redirectUri = `${hub.publicUrl}/hub/oauth_callback`

  await t.test('provider unreachable: a clear 502 page, and the failed discovery is not remembered', async t => {
    const b = new Browser(hub.publicUrl)
    const res = await b.go('/hub/oauth_login')
    t.equal(res.status, 502)
    t.match(res.headers.get('content-type'), /text\/html/)
    t.match(res.body, /sign-in service cannot be reached/)
    t.notMatch(res.body, /at [\w.<>]+ \(|node_modules|Error:/, 'no stack trace')
    t.equal(b.cookie('jupyterhub-session-id'), undefined)
    idp.attach(redirectUri)
    const again = await toProvider(new Browser(hub.publicUrl))
    t.equal(again.status, 200, 'the next sign-in discovers the provider')
    t.match(again.url, new RegExp(`^${idp.issuer}/interaction/`))
  })

  await t.test('full sign-in: PKCE, state, nonce; the user is created; the session works for pages and the API', async t => {
    const b = new Browser(hub.publicUrl)
    const login = await b.go('/hub/login')
    t.match(login.body, /Sign in with Test University/, 'the login page is a button to the provider')
    t.notMatch(login.body, /type="password"/, 'and has no password field')
    const start = await b.fetch('/hub/oauth_login')
    t.equal(start.status, 302)
    const auth = new URL(start.headers.get('location')!)
    t.equal(auth.origin, idp.issuer, 'to the provider discovered from the issuer')
    t.equal(auth.searchParams.get('code_challenge_method'), 'S256')
    t.match(auth.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
    t.equal(auth.searchParams.get('redirect_uri'), redirectUri, 'the default redirect URL, as JupyterHub: <public url>/hub/oauth_callback')
    t.ok(auth.searchParams.get('state') && auth.searchParams.get('nonce'), 'state and nonce')
    t.equal(auth.searchParams.get('scope'), 'openid profile email groups')
    const stateCookie = start.headers.getSetCookie().find(c => c.startsWith('fleethub-oidc-state='))
    t.match(stateCookie, /HttpOnly/)
    t.match(stateCookie, /SameSite=Lax/)
    t.match(stateCookie, /Path=\/hub\//)
    t.match(stateCookie, /Max-Age=600/, 'short-lived')
    await start.body?.cancel()

    const callback = await toCallback(b, hub, 'alice')
    const done = await b.go(callback)
    t.equal(done.status, 200)
    t.equal(done.url, `${hub.publicUrl}/hub/home`)
    t.match(done.body, /Signed in as <strong>alice<\/strong>/)
    t.equal(b.cookie('fleethub-oidc-state'), undefined, 'the state cookie is single use')
    const row = await hub.db.selectFrom('users').select(['name', 'admin']).where('name', '=', 'alice').executeTakeFirst()
    t.same(row, { name: 'alice', admin: false })
    const api = await b.fetch('/hub/api/user', { headers: { referer: `${hub.publicUrl}/hub/home` } })
    t.equal(api.status, 200)
    t.match(await api.json(), { name: 'alice', admin: false, kind: 'user' }, 'the API works with the session')

    const replay = await new Browser(hub.publicUrl).go(callback)
    t.equal(replay.status, 400, 'the same callback in another browser (no state cookie) is refused')
    t.match(replay.body, /did not start in this browser/)
  })

  await t.test('the session cookie is HttpOnly; admin groups make admins; usernames are lowercased', async t => {
    const b = new Browser(hub.publicUrl)
    const callback = await toCallback(b, hub, 'prof')
    const res = await b.fetch(callback)
    t.equal(res.status, 302)
    const session = res.headers.getSetCookie().find(c => c.startsWith('jupyterhub-session-id='))
    t.match(session, /HttpOnly/)
    t.match(session, /SameSite=Lax/)
    t.match(session, /Path=\//)
    const row = await hub.db.selectFrom('users').select(['name', 'admin']).where('name', '=', 'prof.ada').executeTakeFirst()
    t.same(row, { name: 'prof.ada', admin: true }, "'Prof.Ada' from preferred_username, admin from the hub-admins group")
    const admin = await b.go('/hub/admin')
    t.equal(admin.status, 200, 'and may open the admin page')
  })

  await t.test('a user outside the allowed groups gets 403 and no session', async t => {
    const b = new Browser(hub.publicUrl)
    const res = await b.go(await toCallback(b, hub, 'mallory'))
    t.equal(res.status, 403)
    t.match(res.body, /You signed in as mallory, but that account is not allowed to use this hub/)
    t.equal(b.cookie('jupyterhub-session-id'), undefined, 'no session')
    t.same(await hub.db.selectFrom('users').select('name').where('name', '=', 'mallory').execute(), [], 'no user row')
    const home = await b.fetch('/hub/home')
    t.equal(home.status, 302, 'still signed out')
  })

  await t.test('a tampered or missing state is refused with 400', async t => {
    const b = new Browser(hub.publicUrl)
    const callback = new URL(await toCallback(b, hub, 'alice'))
    callback.searchParams.set('state', 'attacker-chosen-state')
    const tampered = await b.go(callback.toString())
    t.equal(tampered.status, 400)
    t.match(tampered.body, /did not start in this browser/)
    t.equal(b.cookie('jupyterhub-session-id'), undefined)

    const b2 = new Browser(hub.publicUrl)
    const cb2 = await toCallback(b2, hub, 'alice')
    b2.setCookie('fleethub-oidc-state', `${b2.cookie('fleethub-oidc-state')!.slice(0, -2)}xx`, '/hub/')
    const forged = await b2.go(cb2)
    t.equal(forged.status, 400, 'a state cookie with a bad signature is refused')

    const noState = new URL(await toCallback(new Browser(hub.publicUrl), hub, 'alice'))
    noState.searchParams.delete('state')
    const b3 = new Browser(hub.publicUrl)
    t.equal((await b3.go(noState.toString())).status, 400, 'no state at all')
  })

  await t.test('access_denied at the provider shows an error page', async t => {
    const b = new Browser(hub.publicUrl)
    const callback = await toCallback(b, hub, 'alice', 'deny')
    t.equal(new URL(callback).searchParams.get('error'), 'access_denied')
    const res = await b.go(callback)
    t.equal(res.status, 403)
    t.match(res.body, /The sign-in was cancelled or refused at the identity provider: The user cancelled the sign-in/)
    t.equal(b.cookie('jupyterhub-session-id'), undefined)
  })

  await t.test('next is kept through the provider; an off-site next is refused', async t => {
    const b = new Browser(hub.publicUrl)
    const page = await b.go('/hub/token') // signed out: login?next=/hub/token
    t.match(page.url, /\/hub\/login\?next=%2Fhub%2Ftoken$/)
    const form = await toProvider(b, '/hub/token')
    const res = await b.go(`${form.url}/login`, { method: 'POST', body: new URLSearchParams({ account: 'alice' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(res.url, `${hub.publicUrl}/hub/token`, 'back where the user was going')

    for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example']) {
      const e = new Browser(hub.publicUrl)
      const f = await toProvider(e, evil)
      const r = await e.go(`${f.url}/login`, { method: 'POST', body: new URLSearchParams({ account: 'alice' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      t.equal(r.url, `${hub.publicUrl}/hub/home`, `next=${evil} is ignored`)
    }
  })

  await t.test('a sign-in started on another name for the hub (localhost) moves to the redirect URL host first', async t => {
    const b = new Browser(hub.publicUrl.replace('//127.0.0.1:', '//localhost:'))
    const first = await b.fetch('/hub/oauth_login?next=%2Fhub%2Ftoken')
    t.equal(first.status, 302)
    t.equal(first.headers.get('location'), `${hub.publicUrl}/hub/oauth_login?hop=1&next=%2Fhub%2Ftoken`, 'to the same path on the redirect URL host')
    t.equal(first.headers.getSetCookie().length, 0, 'no state cookie on the wrong host')
    const form = await b.go(first.headers.get('location')!)
    t.match(form.url, new RegExp(`^${idp.issuer}/interaction/`))
    const done = await b.go(`${form.url}/login`, { method: 'POST', body: new URLSearchParams({ account: 'alice' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(done.url, `${hub.publicUrl}/hub/token`, 'and the sign-in completes')
  })

  await t.test('passwords are not accepted by an OIDC hub', async t => {
    const b = new Browser(hub.publicUrl)
    const res = await b.fetch('/hub/login', { method: 'POST', body: new URLSearchParams({ username: 'alice', password: 'x' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(res.status, 303)
    t.equal(res.headers.get('location'), '/hub/login')
    t.equal(b.cookie('jupyterhub-session-id'), undefined)
  })

  // last: it stops the provider
  await t.test('the provider going away mid-sign-in gives a 502 page, not a stack trace', async t => {
    const b = new Browser(hub.publicUrl)
    const callback = await toCallback(b, hub, 'alice')
    await idp.close()
    const res = await b.go(callback)
    t.equal(res.status, 502)
    t.match(res.body, /The sign-in service did not answer/)
    t.notMatch(res.body, /at [\w.<>]+ \(|node_modules|Error:/)
    t.equal(b.cookie('jupyterhub-session-id'), undefined)
  })
})

t.test('autoLogin: /hub/login goes straight to the provider', async t => {
  const idp = await startProvider(t)
  const hub = await startTestHub(t, { args: oidcArgs(idp.issuer, ['--oidc-auto-login']), env: { FLEETHUB_OIDC_CLIENT_SECRET: CLIENT_SECRET } })
  idp.attach(`${hub.publicUrl}/hub/oauth_callback`)
  const b = new Browser(hub.publicUrl)
  const res = await b.go('/hub/login?next=%2Fhub%2Ftoken')
  t.match(res.url, new RegExp(`^${idp.issuer}/interaction/`), 'at the provider sign-in')
  t.equal(res.hops[1]!.url, `${hub.publicUrl}/hub/oauth_login?next=%2Fhub%2Ftoken`)
  const done = await b.go(`${res.url}/login`, { method: 'POST', body: new URLSearchParams({ account: 'alice' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(done.url, `${hub.publicUrl}/hub/token`)
})

const exe = chromiumPath()
if (!exe) {
  missingPackage(t, 'OIDC sign-in in a browser', 'chromium is not installed (apt-get install chromium)')
} else {
  t.test('OIDC sign-in in a real browser', async t => {
    const idp = await startProvider(t)
    const hub = await startTestHub(t, { args: oidcArgs(idp.issuer), env: { FLEETHUB_OIDC_CLIENT_SECRET: CLIENT_SECRET } })
    idp.attach(`${hub.publicUrl}/hub/oauth_callback`)
    const browser = await launchChromium(t, exe)
    const page = await browser.newPage()
    await page.goto(`${hub.publicUrl}/hub/login`)
    await screenshot(page, 'oidc-login')
    await Promise.all([page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`)), page.click('#oidc-login')])
    await page.fill('#account', 'alice')
    await Promise.all([page.waitForURL(`${hub.publicUrl}/hub/home`), page.click('#idp-login')])
    t.match(await page.textContent('header'), /Signed in as alice/)
    const cookies = await browser.context.cookies(hub.publicUrl)
    t.match(cookies.find(c => c.name === 'jupyterhub-session-id'), { httpOnly: true, sameSite: 'Lax' })
    t.same(page.errors, [], 'no page errors')
  })
}
