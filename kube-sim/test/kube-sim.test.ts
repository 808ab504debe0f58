import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { createKubeSim, singleUserRuntime } from '../src/index.js'
import type { KubeSim, KubeSimOptions } from '../src/index.js'
import { parseKubeSimConfig, parseRange } from '../src/config.js'

async function sim(t: Tap.Test, options: KubeSimOptions = {}): Promise<KubeSim> {
  const s = await createKubeSim({ namespaces: ['hub'], ...options })
  t.teardown(() => s.close())
  return s
}

type Tap = typeof t
declare namespace Tap { type Test = typeof t }

async function api(s: KubeSim, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number, body: any, headers: Headers }> {
  const res = await fetch(`${s.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': contentType }, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

function pod(name: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = { app: 'nb' }): unknown {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels },
    spec: { containers: [{ name: 'notebook', image: 'img:1', ports: [{ containerPort: 8888 }], env: [{ name: 'JUPYTERHUB_USER', value: name }] }], ...extra } }
}

/** Wait (bounded) until GET of the pod satisfies `ok`. */
async function waitPod(s: KubeSim, name: string, ok: (p: any) => boolean, ms = 5000): Promise<any> {
  const end = Date.now() + ms
  for (let i = 0; i < 500 && Date.now() < end; i++) {
    const r = await api(s, 'GET', `/api/v1/namespaces/hub/pods/${name}`)
    if (ok(r.body)) return r.body
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error(`pod ${name} never reached the state`)
}

async function until(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  for (let i = 0; i < 500 && Date.now() < end; i++) {
    if (f()) return
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error('condition not reached in time')
}

async function events(s: KubeSim, name: string): Promise<string[]> {
  const r = await api(s, 'GET', `/api/v1/namespaces/hub/events?fieldSelector=${encodeURIComponent(`involvedObject.kind=Pod,involvedObject.name=${name}`)}`)
  return r.body.items.map((e: any) => e.reason)
}

t.test('discovery answers like an API server', async t => {
  const s = await sim(t)
  t.match((await api(s, 'GET', '/version')).body, { major: '1', gitVersion: /^v1\./ })
  t.match((await api(s, 'GET', '/api')).body, { kind: 'APIVersions', versions: ['v1'] })
  t.match((await api(s, 'GET', '/apis')).body, { kind: 'APIGroupList' })
  const v1 = (await api(s, 'GET', '/api/v1')).body
  t.same(v1.resources.map((r: any) => r.name).sort(), ['events', 'namespaces', 'nodes', 'persistentvolumeclaims', 'pods'])
  t.match((await api(s, 'GET', '/api/v1/nope')).body, { kind: 'Status', code: 404, reason: 'NotFound' })
})

t.test('a pod is scheduled, pulled, started and served on its own loopback IP', async t => {
  const s = await sim(t)
  const created = await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('alice'))
  t.equal(created.status, 201)
  t.equal(created.body.status.phase, 'Pending')
  const running = await waitPod(s, 'alice', p => p.status.phase === 'Running')
  t.match(running.status.podIP, /^127\.(6[4-9]|[7-9]\d|1[01]\d|12[0-6])\.\d+\.\d+$/)
  t.same(running.status.conditions.map((c: any) => `${c.type}=${c.status}`).sort(),
    ['ContainersReady=True', 'Initialized=True', 'PodScheduled=True', 'Ready=True'])
  t.match(running.spec.nodeName, /^sim-node-/)
  t.same(await events(s, 'alice'), ['Scheduled', 'Pulling', 'Pulled', 'Created', 'Started'])
  const res = await fetch(`http://${running.status.podIP}:8888/user/alice/`)
  t.same(await res.json(), { pod: 'alice', namespace: 'hub', user: 'alice', image: 'img:1' })
  // Same image on the same node again: already present, no pull.
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('bob', { nodeSelector: { 'kubernetes.io/hostname': running.spec.nodeName } }))
  await waitPod(s, 'bob', p => p.status.phase === 'Running')
  t.same(await events(s, 'bob'), ['Scheduled', 'Pulled', 'Created', 'Started'])
})

t.test('errors are Status objects with the real codes', async t => {
  const s = await sim(t)
  t.equal((await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('a'))).status, 201)
  const dup = await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('a'))
  t.match(dup, { status: 409, body: { kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409, message: 'pods "a" already exists', details: { name: 'a', kind: 'pods' } } })
  t.match(await api(s, 'GET', '/api/v1/namespaces/hub/pods/zzz'), { status: 404, body: { reason: 'NotFound', message: 'pods "zzz" not found' } })
  t.match(await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('Bad_Name')), { status: 422, body: { reason: 'Invalid', details: { causes: [{ field: 'metadata.name' }] } } })
  t.match(await api(s, 'POST', '/api/v1/namespaces/hub/pods', { metadata: { name: 'x' }, spec: { containers: [] } }), { status: 422 })
  t.match(await api(s, 'POST', '/api/v1/namespaces/nowhere/pods', pod('a')), { status: 404, body: { message: 'namespaces "nowhere" not found' } })
  t.match(await api(s, 'GET', '/api/v1/namespaces/hub/pods?labelSelector=a%20in%20(b'), { status: 400, body: { reason: 'BadRequest' } })
  t.match(await api(s, 'GET', '/api/v1/namespaces/hub/pods?fieldSelector=spec.bogus%3D1'), { status: 400, body: { message: /field label not supported/ } })
  const big = await fetch(`${s.url}/api/v1/namespaces/hub/pods`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2 * 1024 * 1024) })
  t.equal(big.status, 413)
  t.match(await api(s, 'PATCH', '/api/v1/namespaces/hub/pods/a', [{ op: 'add' }], 'application/json-patch+json'), { status: 415 })
})

t.test('list: label selectors, field selectors, limit and continue', async t => {
  const s = await sim(t, { nodes: { count: 0 } })
  const labels = [{ tier: 'a', team: 'x' }, { tier: 'b', team: 'x' }, { tier: 'c' }, { tier: 'a' }]
  for (const [i, l] of labels.entries()) await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod(`p${i}`, {}, l))
  const names = async (q: string): Promise<string[]> => (await api(s, 'GET', `/api/v1/namespaces/hub/pods?${q}`)).body.items.map((p: any) => p.metadata.name)
  t.same(await names('labelSelector=tier%3Da'), ['p0', 'p3'])
  t.same(await names('labelSelector=tier%3D%3Da,team'), ['p0'])
  t.same(await names('labelSelector=tier!%3Da'), ['p1', 'p2'])
  t.same(await names(`labelSelector=${encodeURIComponent('tier in (b,c)')}`), ['p1', 'p2'])
  t.same(await names(`labelSelector=${encodeURIComponent('tier notin (a),!team')}`), ['p2'])
  t.same(await names('fieldSelector=metadata.name%3Dp2'), ['p2'])
  t.same(await names('fieldSelector=status.phase%3DPending'), ['p0', 'p1', 'p2', 'p3'])
  const page1 = (await api(s, 'GET', '/api/v1/namespaces/hub/pods?limit=3')).body
  t.equal(page1.items.length, 3)
  t.equal(page1.metadata.remainingItemCount, 1)
  const page2 = (await api(s, 'GET', `/api/v1/namespaces/hub/pods?limit=3&continue=${page1.metadata.continue}`)).body
  t.same(page2.items.map((p: any) => p.metadata.name), ['p3'])
  t.equal(page2.metadata.continue, undefined)
  t.equal(page2.metadata.resourceVersion, page1.metadata.resourceVersion)
  t.equal((await api(s, 'GET', '/api/v1/pods')).body.items.length, 4, 'cluster-wide list')
})

/** Read a watch stream until `until` says stop (bounded). */
async function readWatch(url: string, until: (events: any[]) => boolean, ms = 5000): Promise<any[]> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  const out: any[] = []
  try {
    const res = await fetch(url, { signal: ac.signal })
    const decoder = new TextDecoder()
    let buf = ''
    for await (const chunk of res.body as any) {
      buf += decoder.decode(chunk, { stream: true })
      let i
      while ((i = buf.indexOf('\n')) >= 0) { out.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1) }
      if (until(out)) break
    }
  } catch (err) {
    // AbortError: our own time limit; 'terminated': the server cut the stream (a dropped watch).
    if ((err as Error).name !== 'AbortError' && (err as Error).message !== 'terminated') throw err
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
  return out
}

t.test('watch: resume from a resourceVersion, bookmarks, 410 for too-old versions, delete with grace', async t => {
  const s = await sim(t, { historySize: 200, bookmarkIntervalMs: 50, terminateMs: 50 })
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('w0'))
  const list = (await api(s, 'GET', '/api/v1/namespaces/hub/pods')).body
  const rv = list.metadata.resourceVersion
  const watching = readWatch(`${s.url}/api/v1/namespaces/hub/pods?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&labelSelector=app%3Dnb`,
    ev => ev.some(e => e.type === 'DELETED'))
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('w1'))
  await waitPod(s, 'w1', p => p.status.phase === 'Running')
  const del = await api(s, 'DELETE', '/api/v1/namespaces/hub/pods/w1?gracePeriodSeconds=1')
  t.equal(del.status, 200)
  t.ok(del.body.metadata.deletionTimestamp, 'Terminating first')
  const seen = await watching
  const w1 = seen.filter(e => e.type !== 'BOOKMARK' && e.object.metadata.name === 'w1').map(e => e.type)
  t.equal(w1[0], 'ADDED')
  t.equal(w1[w1.length - 1], 'DELETED')
  t.ok(seen.some(e => e.type === 'BOOKMARK'), 'bookmarks sent')
  t.match(await api(s, 'GET', '/api/v1/namespaces/hub/pods/w1'), { status: 404 })
  t.ok((await events(s, 'w1')).includes('Killing'))
  // Push the first version out of the 200-change window.
  for (let i = 0; i < 250; i++) await api(s, 'POST', '/api/v1/namespaces/hub/events', { metadata: { name: `e${i}` }, involvedObject: { kind: 'Pod', name: 'x' }, reason: 'Test' })
  const stale = await readWatch(`${s.url}/api/v1/namespaces/hub/pods?watch=true&resourceVersion=${rv}`, ev => ev.length > 0)
  t.match(stale, [{ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: /too old resource version/ } }])
})

t.test('merge patch changes labels, refuses spec changes', async t => {
  const s = await sim(t, { nodes: { count: 0 } })
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('m'))
  const r = await api(s, 'PATCH', '/api/v1/namespaces/hub/pods/m', { metadata: { labels: { app: null, extra: 'yes' } } }, 'application/merge-patch+json')
  t.equal(r.status, 200)
  t.same(r.body.metadata.labels, { extra: 'yes' })
  t.match(await api(s, 'PATCH', '/api/v1/namespaces/hub/pods/m', { spec: { nodeName: 'x' } }, 'application/merge-patch+json'), { status: 422 })
})

t.test('a pod that does not fit stays Pending with FailedScheduling, and is scheduled when room frees', async t => {
  const s = await sim(t, { nodes: { count: 1, cpu: '2' } })
  const big = (name: string): unknown => pod(name, {}, { app: 'nb' })
  const withCpu = (p: any): unknown => { p.spec.containers[0].resources = { requests: { cpu: '1500m' } }; return p }
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', withCpu(big('first')))
  await waitPod(s, 'first', p => p.status.phase === 'Running')
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', withCpu(big('second')))
  const pending = await waitPod(s, 'second', p => p.status.conditions?.some((c: any) => c.type === 'PodScheduled' && c.status === 'False'))
  t.equal(pending.status.phase, 'Pending')
  t.match(pending.status.conditions[0], { reason: 'Unschedulable', message: /0\/1 nodes are available: 1 Insufficient cpu/ })
  t.same(await events(s, 'second'), ['FailedScheduling'])
  await api(s, 'DELETE', '/api/v1/namespaces/hub/pods/first?gracePeriodSeconds=0')
  await waitPod(s, 'second', p => p.status.phase === 'Running')
  t.same((await events(s, 'second'))[1], 'Scheduled')
})

t.test('failed pulls: ErrImagePull then ImagePullBackOff; eviction', async t => {
  const s = await sim(t, { pullBackoffMs: 20, faults: { failImages: ['broken:1'] } })
  const p = pod('pull') as any
  p.spec.containers[0].image = 'broken:1'
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', p)
  const backoff = await waitPod(s, 'pull', x => x.status.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff')
  t.equal(backoff.status.phase, 'Pending')
  const reasons = await events(s, 'pull')
  t.same(reasons.slice(0, 6), ['Scheduled', 'Pulling', 'Failed', 'Failed', 'BackOff', 'Failed'])
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('ev'))
  const running = await waitPod(s, 'ev', x => x.status.phase === 'Running')
  t.ok(s.faults.evict('hub', 'ev'))
  const evicted = await waitPod(s, 'ev', x => x.status.phase === 'Failed')
  t.equal(evicted.status.reason, 'Evicted')
  await t.rejects(fetch(`http://${running.status.podIP}:8888/`), 'nothing listens after eviction')
})

t.test('rate cap answers 429 with Retry-After; requests are recorded and counted', async t => {
  const s = await sim(t, { faults: { rateLimit: 5, retryAfterSeconds: 2 } })
  const statuses: number[] = []
  for (let i = 0; i < 12; i++) statuses.push((await api(s, 'GET', '/api/v1/namespaces/hub/pods')).status)
  t.ok(statuses.filter(x => x === 429).length >= 5, `429s: ${statuses.join(',')}`)
  const limited = await api(s, 'GET', '/api/v1/namespaces/hub/pods')
  t.equal(limited.status, 429)
  t.equal(limited.headers.get('retry-after'), '2')
  t.match(limited.body, { kind: 'Status', reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 2 } })
  const recs = s.requests()
  t.equal(recs.length, 13)
  t.match(recs[0], { method: 'GET', path: '/api/v1/namespaces/hub/pods', verb: 'list', resource: 'pods' })
  t.equal(recs.filter(r => r.status === 429).length, statuses.filter(x => x === 429).length + 1)
  const stats = await (await fetch(`${s.url}/sim/stats`)).json() as any
  t.equal(stats.requests.byVerbResource['list pods'], 13)
  t.equal(stats.requests.perMinute[0]['list pods'], 13)
  s.faults.rateLimit = 0
  s.faults.failNext = { count: 1, status: 503 }
  t.equal((await api(s, 'GET', '/api/v1/namespaces/hub/pods')).status, 503)
  t.equal((await api(s, 'GET', '/api/v1/namespaces/hub/pods')).status, 200)
})

t.test('CLI config parsing', async t => {
  t.same(parseRange('5-15s', 'x'), { min: 5000, max: 15000 })
  t.same(parseRange('500ms-2s', 'x'), { min: 500, max: 2000 })
  t.same(parseRange('0', 'x'), { min: 0, max: 0 })
  const c = parseKubeSimConfig(['--nodes', '3', '--pull-time', '0-2s', '--rate-limit', '200', '--latency', '20ms', '--fail-image', 'a', '--fail-image', 'b'], {})
  t.match(c, { nodes: 3, pullTime: { min: 0, max: 2000 }, rateLimit: 200, latencyMs: 20, failImages: ['a', 'b'], runtime: 'http' })
  t.throws(() => parseKubeSimConfig(['--nodes=-1', '--runtime', 'docker', '--pull-time', 'soon'], {}), /--runtime.*--nodes.*--pull-time/)
  t.equal(parseKubeSimConfig(['--help'], {}).help, true)
})

t.test('the singleuser runtime runs the real built-in server on the pod IP', async t => {
  // A hub endpoint for the server's start-up version check (real HTTP, records what it got).
  const hubSeen: string[] = []
  const hub = createServer((req, res) => { hubSeen.push(`${req.method} ${req.url}`); res.writeHead(200, { 'x-jupyterhub-version': '3.0.0', 'content-type': 'application/json' }); res.end('{}') })
  await new Promise<void>(resolve => hub.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { hub.close(() => resolve()); hub.closeAllConnections() }))
  const apiUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}/hub/api`
  const s = await sim(t, { runtime: singleUserRuntime(pino({ level: 'silent' }), { hubRetryDelaysMs: [100, 200] }) })
  const p = pod('alice') as any
  p.spec.containers[0].env = Object.entries({
    JUPYTERHUB_USER: 'alice', JUPYTERHUB_API_URL: apiUrl, JUPYTERHUB_API_TOKEN: 'tok', JUPYTERHUB_CLIENT_ID: 'jupyterhub-user-alice',
    JUPYTERHUB_OAUTH_CALLBACK_URL: '/user/alice/oauth_callback', JUPYTERHUB_SERVICE_URL: 'http://0.0.0.0:8888/user/alice/', JUPYTERHUB_ACTIVITY_INTERVAL: '0',
  }).map(([name, value]) => ({ name, value }))
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', p)
  const running = await waitPod(s, 'alice', x => x.status.phase === 'Running')
  t.ok(hubSeen.includes('GET /hub/api'), 'the server checked the hub version before it was Running')
  const res = await fetch(`http://${running.status.podIP}:8888/user/alice/`, { redirect: 'manual' })
  t.equal(res.status, 302, 'anonymous browser request is sent to the hub OAuth flow')
  t.match(res.headers.get('location'), /oauth2\/authorize/)
  t.ok(res.headers.get('x-jupyterhub-version'))
  await api(s, 'DELETE', '/api/v1/namespaces/hub/pods/alice?gracePeriodSeconds=0')
  let refused = false
  for (let i = 0; i < 100 && !refused; i++) {
    try { await fetch(`http://${running.status.podIP}:8888/user/alice/`, { redirect: 'manual' }); await new Promise(r => setTimeout(r, 20)) } catch { refused = true }
  }
  t.ok(refused, 'the server stopped with the pod')
})

t.test('the /sim control API sets faults, drops watches and evicts', async t => {
  const s = await sim(t)
  const post = async (path: string, body: unknown): Promise<{ status: number, body: any }> => {
    const res = await fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  t.match(await post('/sim/faults', { latencyMs: 5, rateLimit: 300, failImages: ['x:1'] }), { status: 200, body: { latencyMs: 5, rateLimit: 300, failImages: ['x:1'] } })
  t.equal(s.faults.rateLimit, 300)
  t.ok(s.faults.failImages.has('x:1'))
  t.match(await post('/sim/faults', { latencyMs: -1 }), { status: 400 })
  await api(s, 'POST', '/api/v1/namespaces/hub/pods', pod('e1'))
  await waitPod(s, 'e1', p => p.status.phase === 'Running')
  t.match(await post('/sim/evict', { namespace: 'hub', name: 'e1' }), { status: 200 })
  t.equal((await waitPod(s, 'e1', p => p.status.phase === 'Failed')).status.reason, 'Evicted')
  t.match(await post('/sim/evict', { namespace: 'hub', name: 'nope' }), { status: 404 })
  const t0 = Date.now()
  const watching = readWatch(`${s.url}/api/v1/namespaces/hub/pods?watch=true`, () => false, 10_000)
  await until(() => (s.stats() as any).openWatches === 1)
  t.match(await post('/sim/drop-watches', {}), { status: 200, body: { dropped: 1 } })
  await watching
  t.ok(Date.now() - t0 < 9000, 'the watch ended when dropped, not at its time limit')
})
