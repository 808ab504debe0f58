/**
 * `--default-url` (JupyterHub's Spawner.default_url) end to end: the hub hands it to the server as
 * JUPYTERHUB_DEFAULT_URL through the local spawner, and a signed-in user opening `/user/<name>/`
 * lands on `/user/<name><default url>` after the OAuth dance, with Debian's real
 * jupyterhub-singleuser 3.0 and with the built-in server.
 */
import t from 'tap'
import { Browser, type BrowserResponse } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { needs, which } from '../../test/helpers/requirements.js'

const singleuser = which('jupyterhub-singleuser')

/** Sign `user` in, start the default server and wait until the progress stream says ready. */
async function signInAndSpawn(t: Tap.Test, hub: TestHub, user: string): Promise<Browser> {
  const b = new Browser(hub.publicUrl)
  await b.login(user, DEV_PASSWORD)
  await b.fetch('/hub/spawn')
  const res = await b.fetch(`/hub/api/users/${user}/server/progress`, { headers: { referer: `${hub.publicUrl}/hub/home` } })
  const events = (await res.text()).split('\n\n').filter(c => c.startsWith('data: ')).map(c => JSON.parse(c.slice(6)))
  t.equal(events[events.length - 1]?.ready, true, `ready: ${JSON.stringify(events[events.length - 1])}`)
  return b
}

const paths = (page: BrowserResponse): string[] => page.hops.map(h => new URL(h.url).pathname)

t.test('jupyterhub-singleuser: /user/<name>/ lands on the --default-url', { skip: needs(singleuser !== undefined, 'jupyterhub-singleuser is not installed (apt-get install jupyterhub)') }, async t => {
  const cmd = [singleuser!, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])]
  const hub = await startTestHub(t, { args: ['--singleuser-cmd', cmd.join(' '), '--start-timeout', '60', '--default-url', '/tree'], env: {} })
  const alice = await signInAndSpawn(t, hub, 'alice')

  const page = await alice.go('/user/alice/')
  t.equal(page.status, 200, 'a page at the end')
  t.equal(new URL(page.url).pathname, '/user/alice/tree', 'the default URL under the prefix')
  t.match(page.body, /<title>[^<]*(Home|Jupyter|Files)/i, "it is Jupyter's own page")
  // Without JUPYTERHUB_DEFAULT_URL, jupyterhub-singleuser 3.0 sends the root to its own '/tree/'.
  t.equal(page.hops[0]!.status, 302)
  t.equal(new URL(page.hops[0]!.location!, page.hops[0]!.url).pathname, '/user/alice/tree', "the server's root redirects to JUPYTERHUB_DEFAULT_URL")
  t.ok(paths(page).includes('/hub/api/oauth2/authorize'), 'through the OAuth authorize endpoint')
  t.ok(paths(page).includes('/user/alice/oauth_callback'), 'and the callback')
})

t.test('the built-in server: {username} expands and the root redirects the same way', async t => {
  const hub = await startTestHub(t, { args: ['--default-url', '/tree/home/{username}'] })
  const bob = await signInAndSpawn(t, hub, 'bob')

  const page = await bob.go('/user/bob/')
  t.equal(page.status, 200)
  t.equal(new URL(page.url).pathname, '/user/bob/tree/home/bob', '{username} is the user\'s name')
  t.match(page.body, /<h1>fleethub server of bob<\/h1>/)
  t.ok(paths(page).includes('/user/bob/oauth_callback'), 'after the OAuth dance')
  t.equal(new URL(page.hops[0]!.location!, page.hops[0]!.url).pathname, '/user/bob/tree/home/bob', 'the first hop is the server\'s redirect')
})
