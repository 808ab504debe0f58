import t from 'tap'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'

t.test('login, rejection and logout', async t => {
  const hub = await startTestHub(t)

  t.test('/ goes to the login page, which has a real form', async t => {
    const b = new Browser(hub.publicUrl)
    const res = await b.go('/')
    t.equal(res.hops[0]!.status, 302)
    t.equal(res.hops[0]!.location, '/hub/login')
    t.equal(res.status, 200)
    t.match(res.body, /<form method="post" action="\/hub\/login">/)
    t.match(res.body, /name="username"/)
    t.match(res.body, /name="password"/)
  })

  t.test('a valid username with the dev password gets a session and the home page', async t => {
    const b = new Browser(hub.publicUrl)
    const res = await b.login('alice', DEV_PASSWORD)
    t.equal(res.hops[0]!.status, 302, 'POST /hub/login answers 302')
    t.equal(res.hops[0]!.location, '/hub/home')
    t.equal(res.status, 200)
    t.match(res.body, /Start my server/)
    const setCookie = (await b.fetch('/hub/home')).headers.getSetCookie()
    t.same(setCookie, [], 'no cookie churn on later pages')
    const session = b.cookie('jupyterhub-session-id')
    t.match(session, /^[0-9a-f]{32}$/)
    const rows = await hub.db.selectFrom('sessions').selectAll().execute()
    t.equal(rows.length, 1, 'one session row')
    t.not(rows[0]!.id, session, 'the database stores a hash of the cookie, not the cookie')
  })

  t.test('the session cookie is HttpOnly, SameSite=Lax, path / and has no domain', async t => {
    const page = await fetch(`${hub.publicUrl}/hub/login`)
    const xsrfCookie = page.headers.getSetCookie()[0]!
    const xsrf = /_xsrf=([^;]+)/.exec(xsrfCookie)![1]!
    const res = await fetch(`${hub.publicUrl}/hub/login`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `_xsrf=${xsrf}` },
      body: new URLSearchParams({ _xsrf: xsrf, username: 'bob', password: DEV_PASSWORD }),
    })
    const cookie = res.headers.getSetCookie().find(c => c.startsWith('jupyterhub-session-id='))!
    t.match(cookie, /HttpOnly/)
    t.match(cookie, /SameSite=Lax/)
    t.match(cookie, /Path=\//)
    t.notMatch(cookie, /Domain=/i)
  })

  const rejected = [
    { name: 'wrong password', fields: { username: 'alice', password: 'nope' }, status: 403, message: /Invalid username or password/ },
    { name: 'bad username', fields: { username: '../etc', password: DEV_PASSWORD }, status: 400, message: /Usernames are 1-64 characters/ },
    { name: 'upper-case is folded, spaces are not allowed', fields: { username: 'Al ice', password: DEV_PASSWORD }, status: 400, message: /Usernames are/ },
    { name: 'missing password', fields: { username: 'alice' }, status: 400, message: /Enter your password/ },
    { name: 'missing username', fields: { password: DEV_PASSWORD }, status: 400, message: /Enter a username/ },
  ]
  for (const c of rejected) {
    t.test(`rejected: ${c.name}`, async t => {
      const b = new Browser(hub.publicUrl)
      const res = await b.submit('/hub/login', '/hub/login', c.fields as Record<string, string>)
      t.equal(res.status, c.status)
      t.match(res.body, c.message, 'a clear message on the login page')
      t.match(res.body, /<form method="post"/, 'the form again, to retry')
      t.equal(b.cookie('jupyterhub-session-id'), undefined, 'no session')
    })
  }

  t.test('a login form posted without its xsrf token is refused (cross-site login)', async t => {
    const res = await fetch(`${hub.publicUrl}/hub/login`, {
      method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
      body: new URLSearchParams({ username: 'mallory', password: DEV_PASSWORD }),
    })
    t.equal(res.status, 403)
    t.equal(res.headers.getSetCookie().filter(c => c.startsWith('jupyterhub-session-id')).length, 0)
    const users = await hub.db.selectFrom('users').select('name').where('name', '=', 'mallory').execute()
    t.same(users, [], 'no user row written')
  })

  t.test('next= is honoured for same-site paths only', async t => {
    const b = new Browser(hub.publicUrl)
    const page = await b.go('/hub/login?next=%2F%2Fevil.example%2Fx')
    const res = await b.fetch('/hub/login?next=%2F%2Fevil.example%2Fx', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _xsrf: Browser.xsrf(page.body), username: 'carol', password: DEV_PASSWORD }).toString(),
    })
    t.equal(res.headers.get('location'), '/hub/home')
    const b2 = new Browser(hub.publicUrl)
    const page2 = await b2.go('/hub/login?next=%2Fhub%2Fhome%3Fx%3D1')
    const res2 = await b2.fetch('/hub/login?next=%2Fhub%2Fhome%3Fx%3D1', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _xsrf: Browser.xsrf(page2.body), username: 'carol', password: DEV_PASSWORD }).toString(),
    })
    t.equal(res2.headers.get('location'), '/hub/home?x=1')
  })

  t.test('logout deletes the session; the old cookie no longer works', async t => {
    const b = new Browser(hub.publicUrl)
    await b.login('dave', DEV_PASSWORD)
    const cookie = b.cookie('jupyterhub-session-id')!
    const before = await hub.db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id').select('sessions.id').where('users.name', '=', 'dave').execute()
    t.equal(before.length, 1)
    const out = await b.go('/hub/logout')
    t.equal(out.hops[0]!.status, 302)
    t.equal(out.url, `${hub.publicUrl}/hub/login`)
    t.equal(b.cookie('jupyterhub-session-id'), undefined, 'the browser dropped the cookie')
    const after = await hub.db.selectFrom('sessions').where('id', '=', before[0]!.id).selectAll().execute()
    t.same(after, [], 'the session row is deleted')
    // replay the old cookie, as an attacker who copied it would
    const replay = await fetch(`${hub.publicUrl}/hub/home`, { redirect: 'manual', headers: { cookie: `jupyterhub-session-id=${cookie}` } })
    t.equal(replay.status, 302)
    t.match(replay.headers.get('location'), /^\/hub\/login/)
  })

  t.test('pages that need a login redirect to it, keeping where you were going', async t => {
    const res = await fetch(`${hub.publicUrl}/hub/home`, { redirect: 'manual' })
    t.equal(res.status, 302)
    t.equal(res.headers.get('location'), '/hub/login?next=%2Fhub%2Fhome')
  })
})
