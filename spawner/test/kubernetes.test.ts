/**
 * The Kubernetes spawner through the real @kubernetes/client-node against kube-sim (a real HTTP
 * API server on loopback with a simulated kubelet). Assertions about what the spawner did come
 * from kube-sim's record of API requests.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import pino from 'pino'
import { createKubeSim } from '../../kube-sim/src/index.js'
import type { KubeSim, KubeSimOptions } from '../../kube-sim/src/index.js'
import { createKubernetesSpawner } from '../src/kubernetes.js'
import type { KubernetesSpawner, KubernetesSpawnerConfigInput } from '../src/kubernetes.js'
import type { SpawnProgress, SpawnSpec, StartOptions } from '../src/spawner.js'

const log = pino({ level: 'silent' })
type T = typeof t

async function setup(t: T, simOptions: KubeSimOptions = {}, config: KubernetesSpawnerConfigInput = {}): Promise<{ sim: KubeSim, spawner: KubernetesSpawner }> {
  const sim = await createKubeSim({ namespaces: ['hub'], ...simOptions })
  t.teardown(() => sim.close())
  const spawner = spawnerFor(t, sim, config)
  return { sim, spawner }
}

function spawnerFor(t: T, sim: KubeSim, config: KubernetesSpawnerConfigInput = {}): KubernetesSpawner {
  const spawner = createKubernetesSpawner({ namespace: 'hub', image: 'nb:1', startTimeoutMs: 20_000, stopTimeoutMs: 10_000, apiRetryTimeoutMs: 20_000, ...config },
    { log, kubeconfigObject: sim.kubeconfig('hub') })
  t.teardown(() => spawner.close())
  return spawner
}

function spec(user: string, serverName = '', userOptions: SpawnSpec['userOptions'] = {}): SpawnSpec {
  const prefix = serverName === '' ? `/user/${user}/` : `/user/${user}/${serverName}/`
  return { user, serverName, prefix, userOptions, env: { JUPYTERHUB_USER: user, JUPYTERHUB_API_TOKEN: 'secret', JUPYTERHUB_SERVICE_PREFIX: prefix } }
}

function opts(events: SpawnProgress[] = [], signal = AbortSignal.timeout(60_000)): StartOptions {
  return { signal, progress: e => events.push(e) }
}

async function getJson(sim: KubeSim, path: string): Promise<{ status: number, body: any }> {
  const res = await fetch(`${sim.url}${path}`)
  return { status: res.status, body: await res.json() }
}

/** Bounded wait for a condition. */
async function until(f: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  for (let i = 0; i < Math.ceil(ms / 20) + 10 && Date.now() < end; i++) {
    if (await f()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('condition not reached in time')
}

const calls = (sim: KubeSim, verb: string, resource: string): number =>
  sim.requests().filter(r => r.verb === verb && r.resource === resource).length

t.test('start reports progress from events, resolves with the pod IP, and the server answers there; stop removes the pod', async t => {
  const { sim, spawner } = await setup(t, { pullTime: { min: 20, max: 40 } })
  const events: SpawnProgress[] = []
  const saved: unknown[] = []
  const result = await spawner.start(spec('alice'), { ...opts(events), saveState: s => saved.push(s) })
  t.match(result.url, /^http:\/\/127\.\d+\.\d+\.\d+:8888$/)
  t.same(saved, [{ podName: 'jupyter-alice', namespace: 'hub' }])
  t.match(result.state, { podName: 'jupyter-alice', namespace: 'hub', uid: /[0-9a-f-]{36}/ })
  const messages = events.map(e => e.message).join('\n')
  for (const word of ['Successfully assigned hub/jupyter-alice', 'Pulling image "nb:1"', 'Successfully pulled image', 'Created container notebook', 'Started container notebook']) {
    t.match(messages, word)
  }
  t.ok(events.every((e, i) => i === 0 || e.progress >= events[i - 1].progress), 'progress never goes back')
  const res = await fetch(`${result.url}/user/alice/`)
  t.match(await res.json(), { pod: 'jupyter-alice', user: 'alice' })
  const pod = (await getJson(sim, '/api/v1/namespaces/hub/pods/jupyter-alice')).body
  const env = Object.fromEntries(pod.spec.containers[0].env.map((e: any) => [e.name, e.value]))
  t.equal(env.JUPYTERHUB_SERVICE_URL, 'http://0.0.0.0:8888/user/alice/')
  t.same(await spawner.poll(result.state, spec('alice')), { running: true })
  await spawner.stop(result.state, spec('alice'))
  t.equal((await getJson(sim, '/api/v1/namespaces/hub/pods/jupyter-alice')).status, 404)
  t.match(sim.requests().find(r => r.verb === 'delete'), { path: '/api/v1/namespaces/hub/pods/jupyter-alice', query: 'gracePeriodSeconds=1' })
  t.match(await spawner.poll(result.state, spec('alice')), { running: false })
  await spawner.stop(result.state, spec('alice'))
  t.pass('stopping a gone server resolves')
  // A stale stop (old uid) must not remove a newer pod with the same name.
  const second = await spawner.start(spec('alice'), opts())
  await spawner.stop(result.state, spec('alice'))
  t.same(await spawner.poll(second.state, spec('alice')), { running: true }, 'the newer pod survives a stale stop')
  t.match(sim.requests().filter(r => r.verb === 'delete').map(r => r.status), [200, 404, 409])
})

t.test('the kubeconfig comes from KUBECONFIG (a file) when no object is given', async t => {
  const sim = await createKubeSim({ namespaces: ['hub'] })
  t.teardown(() => sim.close())
  const dir = await mkdtemp(path.join(tmpdir(), 'fleethub-kc-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config')
  await sim.writeKubeconfig(file, 'hub')
  const spawner = createKubernetesSpawner({ namespace: 'hub' }, { log, env: { KUBECONFIG: file } })
  t.teardown(() => spawner.close())
  await spawner.ready()
  t.match(await spawner.poll({}, spec('nobody')), { running: false, reason: 'pod not found' })
  t.ok(sim.requests().some(r => r.verb === 'list' && r.resource === 'pods' && r.query.includes('labelSelector=')), 'listed with our label selector')
})

t.test('profiles pick image and resources; an unknown profile is refused before any API call', async t => {
  const { sim, spawner } = await setup(t, {}, {
    resources: { cpuRequest: '100m' },
    profiles: [
      { slug: 'small', displayName: 'Small', overrides: {} },
      { slug: 'big', displayName: 'Big', overrides: { image: 'big:2', resources: { cpuRequest: '2', memoryLimit: '4Gi' } } },
    ],
  })
  t.same(spawner.profiles().map(p => p.slug), ['small', 'big'])
  await spawner.start(spec('bo', '', { profile: 'big' }), opts())
  const pod = (await getJson(sim, '/api/v1/namespaces/hub/pods/jupyter-bo')).body
  t.equal(pod.spec.containers[0].image, 'big:2')
  t.same(pod.spec.containers[0].resources, { requests: { cpu: '2' }, limits: { memory: '4Gi' } })
  const before = sim.requests().length
  await t.rejects(spawner.start(spec('cy', '', { profile: 'huge' }), opts()), { code: 'SPAWNER_UNKNOWN_PROFILE', message: /unknown profile 'huge'/ })
  t.equal(sim.requests().filter((r, i) => i >= before && r.verb !== 'watch').length, 0)
})

t.test('the home PVC is created once and reused across servers', async t => {
  const { sim, spawner } = await setup(t, {}, { pvc: { enabled: true, size: '2Gi' } })
  const a = await spawner.start(spec('dee'), opts())
  await spawner.stop(a.state, spec('dee'))
  const b = await spawner.start(spec('dee', 'second'), opts())
  const creates = sim.requests().filter(r => r.verb === 'create' && r.resource === 'persistentvolumeclaims')
  t.same(creates.map(r => r.status), [201, 409])
  const pvc = (await getJson(sim, '/api/v1/namespaces/hub/persistentvolumeclaims/claim-dee')).body
  t.equal(pvc.spec.resources.requests.storage, '2Gi')
  const pod = (await getJson(sim, `/api/v1/namespaces/hub/pods/${b.state.podName}`)).body
  t.same(pod.spec.volumes[0], { name: 'home', persistentVolumeClaim: { claimName: 'claim-dee' } })
  await spawner.stop(b.state, spec('dee', 'second'))
  t.equal((await getJson(sim, '/api/v1/namespaces/hub/persistentvolumeclaims/claim-dee')).status, 200, 'the PVC outlives the servers')
})

t.test('a pod that cannot be scheduled is reported, then times out naming the reason, and is deleted', async t => {
  const { sim, spawner } = await setup(t, { nodes: { count: 1, cpu: '1' } }, { resources: { cpuRequest: '2' }, startTimeoutMs: 1500 })
  const events: SpawnProgress[] = []
  await t.rejects(spawner.start(spec('ed'), opts(events)), { code: 'SPAWNER_START_TIMEOUT', message: /not ready after 2s; last event: \[Warning\] FailedScheduling: 0\/1 nodes are available: 1 Insufficient cpu/ })
  t.match(events.map(e => e.message).join('\n'), /\[Warning\] 0\/1 nodes are available/)
  await until(async () => (await getJson(sim, '/api/v1/namespaces/hub/pods/jupyter-ed')).status === 404)
  t.pass('pod deleted after the failed start')
})

t.test('an image that cannot be pulled fails the start with the reason and leaves nothing behind', async t => {
  const { sim, spawner } = await setup(t, { faults: { failImages: ['broken:1'] } }, { image: 'broken:1' })
  const events: SpawnProgress[] = []
  await t.rejects(spawner.start(spec('flo'), opts(events)), { code: 'SPAWNER_IMAGE_PULL', message: /ErrImagePull/ })
  t.match(events.map(e => e.message).join('\n'), /Failed to pull image "broken:1"/)
  await until(async () => (await getJson(sim, '/api/v1/namespaces/hub/pods/jupyter-flo')).status === 404)
  t.pass('pod deleted')
})

t.test('a 429 storm: starts still succeed and Retry-After is honoured', async t => {
  const { sim, spawner } = await setup(t, { faults: { rateLimit: 4, retryAfterSeconds: 1 } }, { apiRateLimit: 100, apiBurst: 100 })
  await spawner.ready()
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => spawner.start(spec(`storm${i}`), opts())))
  t.equal(results.length, 12)
  const reqs = sim.requests().filter(r => r.verb === 'create' && r.resource === 'pods')
  const limited = reqs.filter(r => r.status === 429)
  t.ok(limited.length > 0, `the cap was hit (${limited.length} x 429)`)
  // After each 429 the same pod is not asked for again before Retry-After has passed.
  for (const r of limited) {
    const next = reqs.find(x => x.name === r.name && x.t > r.t)
    t.ok(next !== undefined && next.t - r.t >= 950, `${r.name} retried after ${next === undefined ? 'never' : next.t - r.t}ms`)
  }
  t.equal(reqs.filter(r => r.status === 201).length, 12)
})

t.test('5xx on create is retried with backoff', async t => {
  const { sim, spawner } = await setup(t, { faults: { failNext: { count: 2, status: 500, verb: 'create', resource: 'pods' } } })
  await spawner.start(spec('gus'), opts())
  t.same(sim.requests().filter(r => r.verb === 'create').map(r => r.status), [500, 500, 201])
})

t.test('a dropped watch recovers and the start still completes', async t => {
  const { sim, spawner } = await setup(t, { startTime: { min: 600, max: 600 } })
  await spawner.ready()
  const events: SpawnProgress[] = []
  const started = spawner.start(spec('hal'), opts(events))
  await until(() => calls(sim, 'create', 'pods') === 1)
  t.ok(sim.faults.dropWatches() >= 2, 'watches were open')
  const result = await started
  t.match(result.url, /^http:\/\/127\./)
  await until(() => calls(sim, 'watch', 'pods') >= 2 && calls(sim, 'watch', 'events') >= 2)
  t.pass('both watches were re-established')
  t.match(events.map(e => e.message).join('\n'), /Started container notebook/, 'events after the drop still reached the progress stream')
})

t.test('a watch that resumes from a version older than the history gets 410 and re-lists; the cache follows', async t => {
  const { sim, spawner } = await setup(t, { historySize: 100 })
  const a = await spawner.start(spec('ola'), opts())
  const b = await spawner.start(spec('pia'), opts())
  const lists = calls(sim, 'list', 'pods')
  // Keep the pod watch down while the cluster moves on by more than the history window.
  sim.faults.failNext = { count: 1_000_000, status: 503, verb: 'watch', resource: 'pods' }
  sim.faults.dropWatches()
  await fetch(`${sim.url}/api/v1/namespaces/hub/pods/jupyter-ola?gracePeriodSeconds=0`, { method: 'DELETE' })
  await Promise.all(Array.from({ length: 120 }, (_, i) => fetch(`${sim.url}/api/v1/namespaces/hub/events`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ metadata: { name: `filler-${i}` }, involvedObject: { kind: 'Node', name: 'n' }, reason: 'Filler' }) })))
  sim.faults.failNext = { count: 0, status: 500 }
  await until(async () => !(await spawner.poll(a.state, spec('ola'))).running, 30_000)
  t.ok(calls(sim, 'list', 'pods') > lists, 'the informer re-listed after 410')
  t.match(await spawner.poll(a.state, spec('ola')), { running: false, reason: 'pod not found' }, 'the deletion missed while disconnected is seen')
  t.same(await spawner.poll(b.state, spec('pia')), { running: true })
})

t.test('a 409 on create adopts our own pod and replaces a foreign one', async t => {
  const { sim, spawner } = await setup(t)
  const first = await spawner.start(spec('ivy'), opts())
  // A second start for the same server (e.g. a hub that lost track) adopts the running pod.
  const again = await spawner.start(spec('ivy'), opts())
  t.equal(again.url, first.url)
  t.equal(again.state.uid, first.state.uid)
  // A pod with our name but not ours (another hub instance) is replaced.
  const foreign = { metadata: { name: 'jupyter-jo', labels: { 'hub.fleethub.io/instance': 'other' } }, spec: { containers: [{ name: 'x', image: 'x:1' }] } }
  const res = await fetch(`${sim.url}/api/v1/namespaces/hub/pods`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(foreign) })
  t.equal(res.status, 201)
  const jo = await spawner.start(spec('jo'), opts())
  const pod = (await getJson(sim, '/api/v1/namespaces/hub/pods/jupyter-jo')).body
  t.equal(pod.metadata.uid, jo.state.uid)
  t.equal(pod.metadata.labels['hub.fleethub.io/instance'], 'fleethub')
})

t.test('restart: a new spawner polls only after its first list; pods deleted behind its back poll as gone; orphans', async t => {
  const { sim, spawner } = await setup(t)
  const a = await spawner.start(spec('kim'), opts())
  const b = await spawner.start(spec('lee'), opts())
  await spawner.close()
  sim.faults.latencyMs = 400 // a slow first LIST, so an unguarded poll would see an empty cache
  const fresh = spawnerFor(t, sim)
  const polled = await fresh.poll(a.state, spec('kim'))
  t.same(polled, { running: true }, 'running, not "not found", right after a restart')
  sim.faults.latencyMs = 0
  await fetch(`${sim.url}/api/v1/namespaces/hub/pods/jupyter-kim?gracePeriodSeconds=0`, { method: 'DELETE' })
  await until(async () => !(await fresh.poll(a.state, spec('kim'))).running)
  t.match(await fresh.poll(a.state, spec('kim')), { running: false, reason: 'pod not found' })
  t.same(await fresh.poll(b.state, spec('lee')), { running: true })
  t.match(await fresh.findOrphans([]), [{ podName: 'jupyter-lee', user: 'lee', serverName: '', deleted: false }])
  t.same(await fresh.findOrphans([{ user: 'lee', serverName: '' }]), [])
  const cleaner = spawnerFor(t, sim, { deleteOrphans: true })
  t.match(await cleaner.findOrphans([]), [{ podName: 'jupyter-lee', deleted: true }])
  await until(async () => !(await fresh.poll(b.state, spec('lee'))).running)
  t.pass('orphan deleted')
  // Eviction: poll says not running, with the reason.
  const c = await fresh.start(spec('max'), opts())
  t.ok(sim.faults.evict('hub', 'jupyter-max'))
  await until(async () => !(await fresh.poll(c.state, spec('max'))).running)
  t.match(await fresh.poll(c.state, spec('max')), { running: false, reason: 'Evicted' })
})

t.test('200 concurrent starts: API calls grow with pods started, not with polls', async t => {
  const { sim, spawner } = await setup(t, { runtime: 'none', nodes: { count: 4 } }, { apiRateLimit: 200, apiBurst: 200 })
  await spawner.ready()
  const base = sim.requests().length
  const N = 200
  // 200 starts in flight each listen on the spawner's lifetime signal: no "possible leak" warning
  const warnings: string[] = []
  const onWarning = (w: Error) => { if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const results = await Promise.all(Array.from({ length: N }, (_, i) => spawner.start(spec(`u${i}`), opts())))
  t.equal(results.length, N)
  await new Promise(r => setImmediate(r))
  t.same(warnings, [], 'no MaxListenersExceededWarning')
  const afterStart = sim.requests().slice(base)
  const nonWatch = afterStart.filter(r => r.verb !== 'watch')
  t.equal(nonWatch.filter(r => r.verb === 'create').length, N, 'one create per pod')
  t.ok(nonWatch.length <= N + 5, `about one call per started pod (${nonWatch.length} for ${N})`)
  const beforePolls = sim.requests().length
  for (let round = 0; round < 5; round++) {
    const polled = await Promise.all(results.map((r, i) => spawner.poll(r.state, spec(`u${i}`))))
    t.equal(polled.filter(p => p.running).length, N)
  }
  t.equal(sim.requests().length - beforePolls, 0, '1,000 polls, zero API calls')
  await Promise.all(results.map((r, i) => spawner.stop(r.state, spec(`u${i}`))))
  t.equal(calls(sim, 'delete', 'pods'), N, 'one delete per pod')
})
