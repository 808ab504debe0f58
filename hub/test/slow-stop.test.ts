/**
 * `DELETE /hub/api/users/<name>/server` and JupyterHub's slow_stop_timeout (contract §7): a stop
 * done within the timeout is 204, a slower one is 202 at the timeout while it goes on, and
 * `{"remove": true}` still removes a named server once its slow stop is done.
 */
import t from 'tap'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { ensureUser } from '../../hub/src/users/user.repository.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'
import { startTestHub } from '../../test/helpers/hub.js'
import { waitFor } from '../../test/helpers/wait.js'

const STOP_MS = 1500

async function hubWithSlowStops(t: Tap.Test, slowStopTimeout: string) {
  const hub = await startTestHub(t, {
    args: ['--slow-stop-timeout', slowStopTimeout, '--allow-named-servers'],
    spawner: () => {
      const inner = createInstantSpawner()
      return Object.assign(Object.create(inner), { stop: async (...a: Parameters<typeof inner.stop>) => { await new Promise(r => setTimeout(r, STOP_MS)); return inner.stop(...a) } })
    },
  })
  const admin = await ensureUser(hub.db, 'admin', { admin: true })
  await ensureUser(hub.db, 'sam')
  const token = (await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  const api = (path: string, method = 'GET', body?: unknown) => fetch(`${hub.hubUrl}/hub/api${path}`, {
    method, headers: { authorization: `token ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
  })
  const serverOf = async (name = '') => (await (await api('/users/sam?include_stopped_servers=1')).json() as { servers: Record<string, { ready: boolean; stopped: boolean; pending: string | null }> }).servers[name]
  return { hub, api, serverOf }
}
type Tap = typeof t
declare namespace Tap { type Test = typeof t }

t.test('a stop slower than slow_stop_timeout answers 202 at the timeout and goes on', async t => {
  const { api, serverOf } = await hubWithSlowStops(t, '0')
  t.equal((await api('/users/sam/server', 'POST')).status, 201)
  const t0 = performance.now()
  const res = await api('/users/sam/server', 'DELETE')
  t.equal(res.status, 202, 'answered before the stop is done')
  t.ok(performance.now() - t0 < STOP_MS, 'without waiting for it')
  t.equal((await serverOf())?.pending, 'stop', 'the server shows a pending stop')
  t.equal((await api('/users/sam/server', 'DELETE')).status, 202, 'asking again while it stops is 202 too')
  t.ok(await waitFor('the stop', async () => (await serverOf())?.stopped === true || undefined, 10_000), 'and the stop finishes on its own')

  // a named server removed with {"remove": true}: gone once its slow stop is done
  t.equal((await api('/users/sam/servers/lab', 'POST')).status, 201)
  t.equal((await api('/users/sam/servers/lab', 'DELETE', { remove: true })).status, 202)
  t.ok(await waitFor('the removal', async () => (await serverOf('lab')) === undefined || undefined, 10_000), 'the named server is removed after its stop')
})

t.test('a stop within slow_stop_timeout answers 204 when it is done', async t => {
  const { api, serverOf } = await hubWithSlowStops(t, '10')
  t.equal((await api('/users/sam/server', 'POST')).status, 201)
  const t0 = performance.now()
  t.equal((await api('/users/sam/server', 'DELETE')).status, 204)
  t.ok(performance.now() - t0 >= STOP_MS - 50, 'after the stop itself')
  t.equal((await serverOf())?.stopped, true)
})
