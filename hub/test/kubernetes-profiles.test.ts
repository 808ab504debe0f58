/**
 * Profiles: an admin configures named server options; the home page offers them; the pick travels
 * as user_options to the Kubernetes spawner, whose pod gets that profile's image (kube-sim), and
 * that profile's default URL in place of the hub's `--default-url`.
 */
import t from 'tap'
import { createKubeSim } from '../../kube-sim/src/index.js'
import { createKubernetesSpawner } from '../../spawner/src/kubernetes.js'
import { createLogger } from '../../core/src/log.js'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { ensureUser } from '../../hub/src/users/user.repository.js'
import { Browser } from '../../test/helpers/browser.js'
import { DEV_PASSWORD, startTestHub } from '../../test/helpers/hub.js'

t.test('a user picks a profile on the home page and gets its image', async t => {
  const sim = await createKubeSim({ runtime: 'http' })
  t.teardown(() => sim.close())
  const profiles = [
    { slug: 'small', displayName: 'Small', description: '1 CPU', default: true, overrides: { image: 'example.org/small:1' } },
    { slug: 'big', displayName: 'Big', description: '<b>4 CPUs</b>', overrides: { image: 'example.org/big:1' } },
  ]
  const hub = await startTestHub(t, {
    spawner: () => createKubernetesSpawner({ namespace: 'default', profiles } as never, { log: createLogger('silent'), kubeconfigObject: sim.kubeconfig() }),
  })
  const b = new Browser(hub.publicUrl)
  await b.login('pia', DEV_PASSWORD)
  const home = await b.go('/hub/home')
  t.match(home.body, /<input type="radio" name="profile" value="small" checked>/, 'profiles offered, the default checked')
  t.match(home.body, /value="big"/)
  t.match(home.body, /&lt;b&gt;4 CPUs&lt;\/b&gt;/, 'descriptions are escaped')

  const page = await b.go('/hub/home')
  const res = await b.fetch('/hub/spawn', {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: hub.publicUrl },
    body: new URLSearchParams({ _xsrf: Browser.xsrf(page.body), profile: 'big' }).toString(),
  })
  t.equal(res.status, 302)
  for (let i = 0; i < 100; i++) {
    const row = await hub.db.selectFrom('servers').select(['state', 'user_options']).executeTakeFirst()
    if (row?.state === 'running') break
    await new Promise(r => setTimeout(r, 100))
  }
  const row = await hub.db.selectFrom('servers').select(['state', 'user_options']).executeTakeFirstOrThrow()
  t.equal(row.state, 'running')
  t.same(row.user_options, { profile: 'big' }, 'the pick is the server\'s user_options')
  const pod = await (await fetch(`${sim.url}/api/v1/namespaces/default/pods/jupyter-pia`)).json() as { spec: { containers: Array<{ image: string }> } }
  t.equal(pod.spec.containers[0]!.image, 'example.org/big:1', "the pod runs the chosen profile's image")
})

t.test("the hub's --default-url reaches the pod as JUPYTERHUB_DEFAULT_URL; a profile overrides it", async t => {
  const sim = await createKubeSim({ runtime: 'http' })
  t.teardown(() => sim.close())
  const profiles = [
    { slug: 'classic', displayName: 'Classic', default: true, overrides: {} },
    { slug: 'lab', displayName: 'JupyterLab', overrides: { defaultUrl: '/lab/tree/home/{username}' } },
  ]
  const hub = await startTestHub(t, {
    args: ['--default-url', '/tree', '--allow-named-servers'],
    spawner: () => createKubernetesSpawner({ namespace: 'default', profiles } as never, { log: createLogger('silent'), kubeconfigObject: sim.kubeconfig() }),
  })
  const pia = await ensureUser(hub.db, 'pia')
  const token = (await createToken(hub.db, { kind: 'api', userId: pia.id, scopes: ['inherit'] })).token
  const landing = async (server: string, profile: string, pod: string): Promise<string | undefined> => {
    const res = await fetch(`${hub.publicUrl}/hub/api/users/pia/${server}`, {
      method: 'POST', headers: { authorization: `token ${token}` }, body: JSON.stringify({ profile }),
    })
    t.ok([201, 202].includes(res.status), `started ${server} (${res.status})`)
    for (let i = 0; i < 100; i++) {
      const row = await hub.db.selectFrom('servers').select('state').where('name', '=', server === 'server' ? '' : server.slice('servers/'.length)).executeTakeFirst()
      if (row?.state === 'running') break
      await new Promise(r => setTimeout(r, 100))
    }
    const body = await (await fetch(`${sim.url}/api/v1/namespaces/default/pods/${pod}`)).json() as { spec: { containers: Array<{ env: Array<{ name: string, value: string }> }> } }
    return body.spec.containers[0]!.env.find(e => e.name === 'JUPYTERHUB_DEFAULT_URL')?.value
  }
  t.equal(await landing('server', 'classic', 'jupyter-pia'), '/tree', "a profile without one keeps the hub's")
  t.equal(await landing('servers/lab', 'lab', 'jupyter-pia--lab'), '/lab/tree/home/pia', "the profile's own, {username} expanded")
})
