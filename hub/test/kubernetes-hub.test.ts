/**
 * The hub on a simulated cluster (kube-sim, a measuring instrument like kwok; the real
 * @kubernetes/client-node and our spawner run unchanged): 1,000 servers started through the hub
 * API all become ready and routed; the spawner's API calls grow with pods started, not with pods
 * times polls; a restarted hub adopts every pod; a pod deleted behind the hub's back shows up as
 * a stopped server.
 */
import t from 'tap'
import { sql } from 'kysely'
import { createKubeSim } from '../../kube-sim/src/index.js'
import { createKubernetesSpawner } from '../../spawner/src/kubernetes.js'
import { createLogger } from '../../core/src/log.js'
import { startHub } from '../../hub/src/stack.js'
import { parseHubConfig } from '../../hub/src/config.js'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { createTestDatabase } from '../../test/helpers/db.js'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

const PODS = 1000

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now()
  while (!await fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 200))
  }
  return Date.now() - t0
}

t.test(`${PODS} servers through the hub on kube-sim`, async t => {
  const sim = await createKubeSim({ runtime: 'http', pullTime: { min: 0, max: 50 } }) // 10 nodes x 110 pods by default
  t.teardown(() => sim.close())
  const { url: databaseUrl, db } = await createTestDatabase(t)
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-k8s-'))
  t.teardown(() => fs.rm(dataDir, { recursive: true, force: true }))
  const log = createLogger('silent')
  const config = parseHubConfig(['--port', '0', '--hub-port', '0', '--proxy-api-url', 'http://127.0.0.1:0', '--data-dir', dataDir, '--no-migrate',
    '--log-level', 'silent', '--no-cleanup-servers', '--last-activity-interval', '3600', '--poll-interval', '3600', '--spawner', 'kubernetes'], { FLEETHUB_DEV_PASSWORD: 'x'.repeat(12) })
  const newSpawner = () => createKubernetesSpawner({ namespace: 'default', startTimeoutMs: 240_000, apiRateLimit: 200, apiBurst: 200 }, { log, kubeconfigObject: sim.kubeconfig() })
  let hub = await startHub({ config, databaseUrl, log, spawner: newSpawner(), slowSpawnTimeoutMs: 0 })
  t.teardown(() => hub.close())

  const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
  const token = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  await sql`insert into users (name) select 'k' || i from generate_series(1, ${PODS}) as i`.execute(db)
  sim.clearRequests()

  let next = 1
  const statuses: number[] = []
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next <= PODS) {
      const i = next++
      const res = await fetch(`${hub.hubUrl}/hub/api/users/k${i}/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
      statuses.push(res.status)
      await res.body?.cancel()
    }
  }))
  t.same([...new Set(statuses)].filter(s => s !== 201 && s !== 202), [], 'every spawn request accepted')
  const running = async () => Number((await db.selectFrom('servers').select(sql<string>`count(*)`.as('n')).where('state', '=', 'running').executeTakeFirstOrThrow()).n)
  const ms = await until(`${PODS} running servers`, async () => (await running()) >= PODS, 280_000)
  t.equal(await running(), PODS, `all ${PODS} ready (${(ms / 1000).toFixed(1)} s)`)
  const failed = await db.selectFrom('servers').select(['last_error']).where('last_error', 'is not', null).execute()
  t.same(failed, [], 'no failed spawn')
  const routes = await hub.proxyClient.getRoutes()
  t.equal(Object.keys(routes).filter(k => k.startsWith('/user/k')).length, PODS, 'all routed')
  const page = await fetch(`${hub.publicUrl}/user/k777/`)
  t.equal(page.status, 200, 'a server answers through the proxy at its pod IP')

  const during = sim.requests().filter(r => r.verb !== 'watch')
  const creates = during.filter(r => r.verb === 'create' && r.resource === 'pods').length
  t.equal(creates, PODS, 'one pod created per server')
  t.ok(during.length <= PODS * 4, `API calls grow with pods started: ${during.length} non-watch requests for ${PODS} pods`)

  // at rest: no per-pod polling of the API
  sim.clearRequests()
  await hub.ctx.spawns.pollAll() // a full poll of every running server reads the informer cache
  await new Promise(r => setTimeout(r, 3000))
  const atRest = sim.requests().filter(r => r.verb !== 'watch')
  t.ok(atRest.length <= 5, `a poll of all ${PODS} servers and 3 s at rest cost ${atRest.length} API requests`)

  // a restarted hub adopts every pod (it waits for the informers' first list before polling)
  await hub.close()
  hub = await startHub({ config, databaseUrl, log, spawner: newSpawner() })
  t.equal(await running(), PODS, 'after a hub restart every server is still running (adopted)')
  const again = await fetch(`${hub.publicUrl}/user/k5/`)
  t.equal(again.status, 200, 'and routed by the new hub')

  // a pod deleted behind the hub's back shows as a stopped server
  const del = await fetch(`${sim.url}/api/v1/namespaces/default/pods/jupyter-k42?gracePeriodSeconds=0`, { method: 'DELETE' })
  t.equal(del.status, 200)
  await until('the deleted pod to be noticed', async () => {
    await hub.ctx.spawns.pollAll()
    const row = await db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').select('servers.state').where('users.name', '=', 'k42').executeTakeFirst()
    return row?.state === 'stopped'
  }, 30_000)
  t.pass('the server of k42 is stopped')
  const gone = await hub.proxyClient.getRoutes()
  t.equal(gone['/user/k42'], undefined, 'and its route removed')
})
