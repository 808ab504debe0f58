import t from 'tap'
import { pino } from 'pino'
import { WebSocket } from 'ws'
import { createSingleUserServer, type SingleUserServerOptions } from '../../src/singleuser/server.js'
import { startHubPeer, type HubPeer } from './hub-peer.js'

const PREFIX = '/user/alice/'
const CLIENT = 'jupyterhub-user-alice'
const CALLBACK = '/user/alice/oauth_callback'

interface Pair { peer: HubPeer, base: string, origin: string, logs: Array<Record<string, unknown>> }

async function startPair(t: Tap.Test, over: Partial<SingleUserServerOptions> & { version?: string } = {}): Promise<Pair> {
  const peer = await startHubPeer({ clientId: CLIENT, redirectUri: CALLBACK, version: over.version })
  t.teardown(() => peer.close())
  const logs: Array<Record<string, unknown>> = []
  const log = pino({ level: 'warn' }, { write: (line: string) => { logs.push(JSON.parse(line)) } })
  const su = await createSingleUserServer({
    user: 'alice', serverName: '', prefix: PREFIX, baseUrl: '/', apiUrl: peer.apiUrl, apiToken: peer.apiToken,
    activityUrl: `${peer.apiUrl}/users/alice/activity`, activityIntervalMs: 0, clientId: CLIENT,
    oauthCallbackUrl: CALLBACK, accessScopes: ['access:servers!server=alice/', 'access:servers!user=alice'],
    host: '127.0.0.1', port: 0, log, hubRetryDelaysMs: [], ...over,
  })
  t.teardown(() => su.close())
  return { peer, base: su.url, origin: new URL(su.url).origin, logs }
}

const get = (url: string, headers: Record<string, string> = {}): Promise<Response> => fetch(url, { redirect: 'manual', headers })

function setCookies(res: Response): Map<string, string> {
  const out = new Map<string, string>()
  for (const c of res.headers.getSetCookie()) out.set(c.slice(0, c.indexOf('=')), c)
  return out
}
const cookieValue = (setCookie: string): string => setCookie.slice(setCookie.indexOf('=') + 1, setCookie.indexOf(';'))

/** Browser-style OAuth dance for `login` (the user logged in at the peer); returns the auth cookie value. */
async function dance(p: Pair, login: string, session: string, path = `${PREFIX}tree?x=1`): Promise<{ cookie: string | undefined, final: Response }> {
  const first = await get(`${p.origin}${path}`, { cookie: `jupyterhub-session-id=${session}` })
  const stateCookie = setCookies(first).get(`${CLIENT}-oauth-state`)!
  const authorize = await get(`${p.peer.url}${first.headers.get('location')}`, { cookie: `peer-login=${login}; jupyterhub-session-id=${session}` })
  const callback = await get(`${p.origin}${authorize.headers.get('location')}`,
    { cookie: `${CLIENT}-oauth-state=${cookieValue(stateCookie)}; jupyterhub-session-id=${session}` })
  const auth = setCookies(callback).get(CLIENT)
  return { cookie: auth && cookieValue(auth), final: callback }
}

t.test('startup: version check without auth, then the first activity report with the exact body', async t => {
  const p = await startPair(t)
  t.match(p.peer.calls[0], { method: 'GET', path: '/hub/api', authorization: undefined })
  for (let i = 0; i < 100 && p.peer.activity.length === 0; i++) await new Promise(r => setTimeout(r, 20))
  const a = p.peer.activity[0]
  t.equal(a.path, '/hub/api/users/alice/activity')
  t.equal(a.authorization, `token ${p.peer.apiToken}`)
  t.match(a.body, /^\{"servers":\{"":\{"last_activity":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"\}\},"last_activity":"[^"]+"\}$/)
  const body = JSON.parse(a.body)
  t.equal(body.last_activity, body.servers[''].last_activity)
  t.same(p.logs, [], 'no warning when the versions match')
})

t.test('a hub of another minor version is a warning, not an error', async t => {
  const p = await startPair(t, { version: '4.1.0' })
  t.match(p.logs, [{ msg: 'hub version differs from ours', hubVersion: '4.1.0' }])
})

t.test('an unreachable hub: bounded retries, then SINGLEUSER_HUB_UNREACHABLE', async t => {
  const peer = await startHubPeer({ clientId: CLIENT, redirectUri: CALLBACK })
  await peer.close() // nothing listens there any more
  await t.rejects(createSingleUserServer({
    user: 'alice', serverName: '', prefix: PREFIX, baseUrl: '/', apiUrl: peer.apiUrl, apiToken: 'x', activityUrl: peer.apiUrl,
    activityIntervalMs: 0, clientId: CLIENT, oauthCallbackUrl: CALLBACK, accessScopes: [], host: '127.0.0.1', port: 0,
    log: pino({ level: 'silent' }), hubRetryDelaysMs: [10, 20],
  }), { code: 'SINGLEUSER_HUB_UNREACHABLE', message: /after 3 attempts/ })
})

t.test('activity: reported every interval ±10 %, named server key, newer timestamp after use', async t => {
  const interval = 400
  const p = await startPair(t, { activityIntervalMs: interval, serverName: 'foo', prefix: '/user/alice/foo/' })
  const token = 'tok-alice-activity'
  p.peer.addToken(token, { kind: 'user', name: 'alice', scopes: ['access:servers!user=alice'], session_id: null })
  for (let i = 0; i < 150 && p.peer.activity.length < 2; i++) await new Promise(r => setTimeout(r, 20))
  t.equal((await get(`${p.origin}/user/alice/foo/api/status`, { authorization: `token ${token}` })).status, 200)
  for (let i = 0; i < 150 && p.peer.activity.length < 4; i++) await new Promise(r => setTimeout(r, 20))
  t.ok(p.peer.activity.length >= 4, `got ${p.peer.activity.length} reports`)
  const gaps = p.peer.activity.slice(1, 4).map((a, i) => a.at - p.peer.activity[i].at)
  // Timers never fire early, so the lower bound is exact; the upper bound allows for a loaded machine.
  for (const gap of gaps) t.ok(gap >= interval * 0.9 - 5 && gap <= interval * 1.1 + 1500, `gap ${gap} ms`)
  const stamps = p.peer.activity.map(a => JSON.parse(a.body))
  t.ok(stamps.every(s => Object.keys(s.servers).join() === 'foo'), 'reports under the server name')
  t.ok(stamps[stamps.length - 1].last_activity > stamps[0].last_activity, 'the request moved last_activity forward')
})

t.test('activity: a failing hub is retried with backoff until it answers', async t => {
  const peer = await startHubPeer({ clientId: CLIENT, redirectUri: CALLBACK })
  t.teardown(() => peer.close())
  peer.failActivity(2)
  const su = await createSingleUserServer({
    user: 'alice', serverName: '', prefix: PREFIX, baseUrl: '/', apiUrl: peer.apiUrl, apiToken: peer.apiToken,
    activityUrl: `${peer.apiUrl}/users/alice/activity`, activityIntervalMs: 0, clientId: CLIENT, oauthCallbackUrl: CALLBACK,
    accessScopes: [], host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }), activityRetry: { startMs: 20, maxMs: 40, totalMs: 5000 },
  })
  t.teardown(() => su.close())
  for (let i = 0; i < 150 && peer.activity.length === 0; i++) await new Promise(r => setTimeout(r, 20))
  t.equal(peer.activity.length, 1, 'delivered once')
  t.equal(peer.calls.filter(c => c.path.endsWith('/activity')).length, 3, 'two failures, then success')
})

t.test('unauthenticated HTML -> OAuth redirect with the right parameters and a state cookie', async t => {
  const p = await startPair(t)
  const res = await get(`${p.origin}${PREFIX}tree?x=1`)
  t.equal(res.status, 302)
  const loc = res.headers.get('location')!
  t.match(loc, /^\/hub\/api\/oauth2\/authorize\?client_id=jupyterhub-user-alice&redirect_uri=%2Fuser%2Falice%2Foauth_callback&response_type=code&state=[A-Za-z0-9_-]+$/)
  const state = new URL(loc, 'http://x').searchParams.get('state')!
  const decoded = JSON.parse(Buffer.from(state, 'base64url').toString())
  t.match(decoded, { uuid: /^[0-9a-f]{32}$/, next_url: '/user/alice/tree?x=1' })
  const sc = setCookies(res).get(`${CLIENT}-oauth-state`)!
  t.match(sc, /; Path=\/user\/alice\/;/)
  t.match(sc, /Max-Age=600/)
  t.match(sc, /HttpOnly/)
  t.match(sc, /SameSite=Lax/)
  t.notOk(sc.includes(state), 'the state is sealed in the cookie, not stored in clear')
  t.equal(res.headers.get('x-jupyterhub-version'), '3.0.0')
  t.equal((await get(`${p.origin}${PREFIX}`)).status, 302, 'the readiness poll gets < 500')
})

t.test('full OAuth dance -> cookie -> page names the user; code exchange is exact', async t => {
  const p = await startPair(t)
  const { cookie, final } = await dance(p, 'alice', 'sess1')
  t.equal(final.status, 302)
  t.equal(final.headers.get('location'), '/user/alice/tree?x=1')
  const setc = setCookies(final).get(CLIENT)!
  t.match(setc, /; Path=\/user\/alice\/;.*HttpOnly; SameSite=Lax/)
  t.match(setCookies(final).get(`${CLIENT}-oauth-state`), /Max-Age=0/, 'state cookie cleared')
  const form = p.peer.tokenExchanges[0]
  t.same(Object.fromEntries(form), { client_id: CLIENT, client_secret: p.peer.apiToken, grant_type: 'authorization_code', code: form.get('code'), redirect_uri: CALLBACK })
  const page = await get(`${p.origin}/user/alice/tree?x=1`, { cookie: `${CLIENT}=${cookie}; jupyterhub-session-id=sess1` })
  t.equal(page.status, 200)
  t.match(await page.text(), /<h1>fleethub server of alice<\/h1>/)
  // Flip a character in the middle: changing only the last base64 characters can leave the
  // decoded bytes unchanged (their low bits are padding), which made this check flaky.
  const mid = Math.floor(cookie!.length / 2)
  const flipped = cookie!.slice(0, mid) + (cookie![mid] === 'A' ? 'B' : 'A') + cookie!.slice(mid + 1)
  const tampered = await get(`${p.origin}${PREFIX}api/status`, { cookie: `${CLIENT}=${flipped}` })
  t.equal(tampered.status, 403, 'a tampered cookie is no cookie')
})

t.test('OAuth callback: state mismatch and reused code are refused', async t => {
  const p = await startPair(t)
  const res = await get(`${p.origin}${CALLBACK}?code=abc&state=forged`)
  t.equal(res.status, 400)
  t.match(await res.text(), /OAuth state mismatch/)
  const first = await get(`${p.origin}${PREFIX}`)
  const sc = cookieValue(setCookies(first).get(`${CLIENT}-oauth-state`)!)
  const state = new URL(first.headers.get('location')!, 'http://x').searchParams.get('state')
  const bad = await get(`${p.origin}${CALLBACK}?code=not-issued&state=${state}`, { cookie: `${CLIENT}-oauth-state=${sc}` })
  t.equal(bad.status, 403, 'the hub refused the code')
})

t.test("another user's token or login -> 403; the hub's 403 -> anonymous", async t => {
  const p = await startPair(t)
  p.peer.addToken('tok-bob', { kind: 'user', name: 'bob', scopes: ['access:servers!server=bob/', 'access:servers!user=bob'], session_id: null })
  p.peer.addToken('tok-alice-ro', { kind: 'user', name: 'alice', scopes: ['read:users:name!user=alice'], session_id: null })
  p.peer.addToken('tok-admin', { kind: 'user', name: 'admin', scopes: ['access:servers'], session_id: null })
  const html = await get(`${p.origin}${PREFIX}`, { authorization: 'token tok-bob' })
  t.equal(html.status, 403)
  t.notMatch(await html.text(), /fleethub server of/)
  const api = await get(`${p.origin}${PREFIX}api/status`, { authorization: 'Bearer tok-bob' })
  t.equal(api.status, 403)
  t.equal((await get(`${p.origin}${PREFIX}api/status?token=tok-alice-ro`)).status, 403, 'identify-only scope is not access')
  t.equal((await get(`${p.origin}${PREFIX}api/status?token=tok-admin`)).status, 200, 'unfiltered access:servers is enough')
  const anonApi = await get(`${p.origin}${PREFIX}api/status`, { authorization: 'token not-a-token' })
  t.equal(anonApi.status, 403)
  t.equal(await anonApi.text(), '{"message":"Forbidden","reason":null}')
  t.equal((await get(`${p.origin}${PREFIX}`, { authorization: 'token not-a-token' })).status, 302, 'anonymous HTML goes to OAuth')
  const { final } = await dance(p, 'bob', 'sess-bob')
  t.equal(final.status, 403, 'bob logged in at the hub still gets no cookie for alice')
  t.equal(setCookies(final).get(CLIENT), undefined)
})

t.test('token checks are cached per (session cookie, token); a revoked token is caught once the session changes', async t => {
  const p = await startPair(t)
  const { cookie } = await dance(p, 'alice', 'sess1')
  const userCalls = (): number => p.peer.calls.filter(c => c.path === '/hub/api/user').length
  const before = userCalls()
  const status = (session: string): Promise<Response> => get(`${p.origin}${PREFIX}api/status`, { cookie: `${CLIENT}=${cookie}; jupyterhub-session-id=${session}` })
  t.equal((await status('sess1')).status, 200)
  t.equal(userCalls(), before, 'served from the cache filled by the callback')
  t.equal(p.peer.issued.length, 1)
  p.peer.revoke(p.peer.issued[0])
  t.equal((await status('sess1')).status, 200, 'still cached under the old session')
  const html = await get(`${p.origin}${PREFIX}`, { cookie: `${CLIENT}=${cookie}; jupyterhub-session-id=sess2` })
  t.equal(html.status, 302, 'logged out at the hub: OAuth again')
  t.match(html.headers.get('location'), /^\/hub\/api\/oauth2\/authorize\?/)
  t.match(setCookies(html).get(CLIENT), /Max-Age=0/, 'stale cookie cleared on its own path')
  t.equal(userCalls(), before + 1)
})


t.test('websocket echo: text and binary with a token; rejected without auth or cross-site by cookie', async t => {
  const p = await startPair(t)
  p.peer.addToken('tok-alice', { kind: 'user', name: 'alice', scopes: ['access:servers!server=alice/'], session_id: null })
  const wsUrl = `${p.base.replace('http', 'ws')}api/kernels/k1/channels`
  const ws = new WebSocket(`${wsUrl}?token=tok-alice`)
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const echo = (data: string | Buffer): Promise<{ data: Buffer, binary: boolean }> => new Promise(resolve => {
    ws.once('message', (d, binary) => resolve({ data: d as Buffer, binary }))
    ws.send(data)
  })
  t.same(await echo('{"msg_type":"kernel_info_request"}'), { data: Buffer.from('{"msg_type":"kernel_info_request"}'), binary: false })
  t.same(await echo(Buffer.from([1, 2, 3])), { data: Buffer.from([1, 2, 3]), binary: true })
  const status = await (await get(`${p.origin}${PREFIX}api/status?token=tok-alice`)).json() as { connections: number }
  t.equal(status.connections, 1)

  const refused = async (url: string, headers: Record<string, string> = {}): Promise<number> => {
    const anon = new WebSocket(url, { headers })
    return new Promise(resolve => {
      anon.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); anon.terminate() })
      anon.once('open', () => { resolve(101); anon.terminate() })
      anon.once('error', () => resolve(-1))
    })
  }
  t.equal(await refused(wsUrl), 403, 'no auth')
  t.equal(await refused(`${wsUrl}?token=not-a-token`), 403, 'bad token')
  t.equal(await refused(`${p.base.replace('http', 'ws')}api/terminals/1`), 404, 'not a kernel channel')
  const { cookie } = await dance(p, 'alice', 's')
  t.equal(await refused(wsUrl, { cookie: `${CLIENT}=${cookie}`, origin: p.origin }), 101, 'cookie from our own page')
  t.equal(await refused(wsUrl, { cookie: `${CLIENT}=${cookie}`, origin: 'http://evil.example' }), 403, 'cookie from another site')
})

t.test('paths outside the prefix are 404, even with a valid token', async t => {
  const p = await startPair(t)
  p.peer.addToken('tok-alice', { kind: 'user', name: 'alice', scopes: ['access:servers!server=alice/'], session_id: null })
  for (const path of ['/', '/user/bob/', '/user/alice', '/user/alicex/', '/hub/api']) {
    t.equal((await get(`${p.origin}${path}?token=tok-alice`)).status, 404, path)
  }
  const ok = await get(`${p.origin}${PREFIX}api/status?token=tok-alice`)
  t.match(await ok.json(), { started: /Z$/, last_activity: /Z$/, connections: 0 })
})

t.test('user-controlled names are escaped on the page', async t => {
  const p = await startPair(t, { serverName: '<img src=x onerror=alert(1)>', prefix: '/user/alice/%3Cimg%3E/' })
  p.peer.addToken('tok-alice', { kind: 'user', name: 'alice', scopes: ['access:servers!user=alice'], session_id: null })
  const html = await (await get(`${p.origin}/user/alice/%3Cimg%3E/?token=tok-alice`)).text()
  t.notMatch(html, /<img/)
  t.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/)
})

t.test('two tabs logging in at once each get their own state cookie and both succeed', async t => {
  const p = await startPair(t)
  const tabA = await get(`${p.origin}${PREFIX}a`)
  const cookieA = setCookies(tabA).get(`${CLIENT}-oauth-state`)!
  const tabB = await get(`${p.origin}${PREFIX}b`, { cookie: `${CLIENT}-oauth-state=${cookieValue(cookieA)}` })
  const [nameB, cookieB] = [...setCookies(tabB)].find(([name]) => name.startsWith(`${CLIENT}-oauth-state-`))!
  t.match(nameB, /^jupyterhub-user-alice-oauth-state-[0-9a-f]{8}$/)
  const jar = `${CLIENT}-oauth-state=${cookieValue(cookieA)}; ${nameB}=${cookieValue(cookieB)}`
  for (const [tab, next] of [[tabB, '/user/alice/b'], [tabA, '/user/alice/a']] as const) {
    const authorize = await get(`${p.peer.url}${tab.headers.get('location')}`, { cookie: 'peer-login=alice' })
    const done = await get(`${p.origin}${authorize.headers.get('location')}`, { cookie: jar })
    t.equal(done.status, 302)
    t.equal(done.headers.get('location'), next)
  }
})

t.test('JUPYTERHUB_DEFAULT_URL: the bare prefix redirects to <prefix><default url> before auth (as jupyter_server), and the dance lands there', async t => {
  const p = await startPair(t, { defaultUrl: '/lab' })
  const root = await get(`${p.origin}${PREFIX}?reset=1`)
  t.equal(root.status, 302)
  t.equal(root.headers.get('location'), '/user/alice/lab?reset=1', 'under the prefix, query kept')
  t.equal(setCookies(root).size, 0, 'no OAuth state yet: the landing page starts the dance')
  const { cookie, final } = await dance(p, 'alice', 'sess1', root.headers.get('location')!)
  t.equal(final.headers.get('location'), '/user/alice/lab?reset=1', 'back on the default URL after OAuth')
  const page = await get(`${p.origin}/user/alice/lab?reset=1`, { cookie: `${CLIENT}=${cookie}; jupyterhub-session-id=sess1` })
  t.equal(page.status, 200)
  t.equal((await get(`${p.origin}${PREFIX}`, { cookie: `${CLIENT}=${cookie}; jupyterhub-session-id=sess1` })).headers.get('location'), '/user/alice/lab', 'signed in too')
  t.equal((await get(`${p.origin}${PREFIX}api/status`, { cookie: `${CLIENT}=${cookie}; jupyterhub-session-id=sess1` })).status, 200, 'other paths are not redirected')
  t.equal((await fetch(`${p.origin}${PREFIX}`, { method: 'POST', redirect: 'manual' })).status, 403, 'only reads are redirected')

  const slash = await startPair(t, { defaultUrl: '/' })
  t.match((await get(`${slash.origin}${PREFIX}`)).headers.get('location'), /^\/hub\/api\/oauth2\/authorize\?/, "'/' would loop: the prefix itself is the page")
})
