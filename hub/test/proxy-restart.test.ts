/**
 * A proxy the hub did not start (`--proxy external`, as in a Kubernetes deployment where the proxy
 * is its own Deployment) is killed and comes back empty: the hub notices from the new boot id on
 * its next call (it pings every second) and puts every route back in one bulk call. CHP + JupyterHub
 * lose these routes until the next periodic check (300 s by default).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { sql } from 'kysely'
import { freeLowPort } from '../../core/src/embedded-postgres.js'
import { proxyEntry } from '../../hub/src/proxy/proxy-process.js'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'
import { startTestHub } from '../../test/helpers/hub.js'

const TOKEN = 'external-proxy-token-0123456789'
const SERVERS = 50

async function startProxy(port: number, apiPort: number, dir: string): Promise<ChildProcess> {
  const ready = path.join(dir, `ready-${Date.now()}.json`)
  const child = spawn(process.execPath, [proxyEntry(), '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort),
    '--log-level', 'warn', '--ready-file', ready], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: 'ignore' })
  for (let i = 0; i < 200; i++) {
    if (await fs.access(ready).then(() => true, () => false)) return child
    await new Promise(r => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error('proxy did not start')
}

t.test('an external proxy restarted empty gets every route back within seconds', async t => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-px-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const [port, apiPort] = [await freeLowPort(), await freeLowPort()]
  let proxy = await startProxy(port, apiPort, dir)
  t.teardown(() => { proxy.kill('SIGTERM') })
  const hub = await startTestHub(t, {
    args: ['--proxy', 'external', '--proxy-api-url', `http://127.0.0.1:${apiPort}`, '--port', String(port), '--admin-users', 'admin'],
    env: { CONFIGPROXY_AUTH_TOKEN: TOKEN }, spawner: () => createInstantSpawner(),
  })
  const admin = await hub.db.selectFrom('users').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow()
  const token = (await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  await sql`insert into users (name) select 'r' || i from generate_series(1, ${SERVERS}) as i`.execute(hub.db)
  await Promise.all(Array.from({ length: SERVERS }, (_, i) => fetch(`${hub.hubUrl}/hub/api/users/r${i + 1}/server`, { method: 'POST', headers: { authorization: `token ${token}` } }).then(r => r.body?.cancel())))
  const count = async () => Object.keys(await hub.proxyClient.getRoutes().catch(() => ({}))).filter(k => k.startsWith('/user/')).length
  for (let i = 0; i < 300 && await count() < SERVERS; i++) await new Promise(r => setTimeout(r, 100))
  t.equal(await count(), SERVERS, 'all routed through the external proxy')

  proxy.kill('SIGKILL')
  await new Promise(r => proxy.once('exit', r))
  proxy = await startProxy(port, apiPort, dir)
  const restartedAt = Date.now()
  let backMs = -1
  for (let i = 0; i < 150; i++) {
    const routes = await fetch(`http://127.0.0.1:${apiPort}/api/routes`, { headers: { authorization: `token ${TOKEN}` } }).then(r => r.json() as Promise<Record<string, unknown>>)
    if (Object.keys(routes).filter(k => k.startsWith('/user/')).length === SERVERS && routes['/']) { backMs = Date.now() - restartedAt; break }
    await new Promise(r => setTimeout(r, 100))
  }
  t.ok(backMs >= 0 && backMs < 10_000, `every route back ${backMs} ms after the proxy came back empty`)
  const page = await fetch(`http://127.0.0.1:${port}/user/r7/`)
  t.equal(await page.text(), 'server of r7 at /user/r7/', 'users reach their servers again')
})
