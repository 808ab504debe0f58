/**
 * A real Jupyter single-user server (Debian's jupyterhub-singleuser 3.0) under fleethub: spawned
 * by the local spawner, reached through the proxy with the OAuth dance, reporting activity, locked
 * out after logout, and closed to other users.
 */
import t from 'tap'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'
import { needs, which } from '../../test/helpers/requirements.js'

const singleuser = which('jupyterhub-singleuser')

t.test('jupyterhub-singleuser runs under fleethub as under JupyterHub', { skip: needs(singleuser !== undefined, 'jupyterhub-singleuser is not installed (apt-get install jupyterhub)') }, async t => {
  const cmd = [singleuser!, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])]
  const hub = await startTestHub(t, { args: ['--singleuser-cmd', cmd.join(' '), '--start-timeout', '60'], env: {} })
  const alice = new Browser(hub.publicUrl)
  await alice.login('alice', DEV_PASSWORD)
  await alice.fetch('/hub/spawn')
  const res = await alice.fetch('/hub/api/users/alice/server/progress', { headers: { referer: `${hub.publicUrl}/hub/home` } })
  const events = (await res.text()).split('\n\n').filter(c => c.startsWith('data: ')).map(c => JSON.parse(c.slice(6)))
  t.equal(events[events.length - 1].ready, true, `ready: ${JSON.stringify(events[events.length - 1])}`)

  const page = await alice.go('/user/alice/tree')
  t.equal(page.status, 200, 'the notebook page')
  t.match(page.body, /<title>[^<]*(Home|Jupyter|Files)/i, "it is Jupyter's own page")
  const hops = page.hops.map(h => new URL(h.url).pathname)
  t.ok(hops.includes('/hub/api/oauth2/authorize'), 'through the OAuth authorize endpoint')
  t.ok(hops.includes('/user/alice/oauth_callback'), 'and the callback')
  t.ok(page.hops.length <= 6, `a few hops (${page.hops.length})`)

  // the server reports activity to the hub on its own
  let activity: Date | null = null
  for (let i = 0; i < 100 && !activity; i++) {
    await hub.ctx.activity.flush()
    const row = await hub.db.selectFrom('servers').select('last_activity').where('state', '=', 'running').executeTakeFirst()
    const user = await hub.db.selectFrom('users').select('last_activity').where('name', '=', 'alice').executeTakeFirstOrThrow()
    activity = user.last_activity && row?.last_activity ? user.last_activity : null
    if (!activity) await new Promise(r => setTimeout(r, 100))
  }
  t.ok(activity, 'activity reached the hub')

  // another user never gets the page
  const bob = new Browser(hub.publicUrl)
  await bob.login('bob', DEV_PASSWORD)
  const cross = await bob.go('/user/alice/tree')
  t.not(cross.status, 200, "bob does not get alice's notebook")
  t.ok([403].includes(cross.status), `bob is refused (${cross.status})`)

  // after logout, alice's server cookie no longer works
  const serverCookie = alice.cookie('jupyterhub-user-alice')
  t.ok(serverCookie, 'the server set its own cookie')
  await alice.go('/hub/logout')
  const stale = await fetch(`${hub.publicUrl}/user/alice/api/status`, { redirect: 'manual', headers: { cookie: `jupyterhub-user-alice=${serverCookie}` } })
  t.equal(stale.status, 403, 'the revoked OAuth token is refused by the server')
  const html = await fetch(`${hub.publicUrl}/user/alice/tree`, { redirect: 'manual', headers: { cookie: `jupyterhub-user-alice=${serverCookie}` } })
  t.equal(html.status, 302, 'an HTML page starts OAuth again')
  t.match(html.headers.get('location'), /\/hub\/api\/oauth2\/authorize/)
})
