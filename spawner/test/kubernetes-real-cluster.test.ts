/**
 * The Kubernetes spawner against a REAL cluster. Runs only when KUBECONFIG is set (and then uses
 * its current context; FLEETHUB_TEST_NAMESPACE picks the namespace, default 'default', and
 * FLEETHUB_TEST_IMAGE the image, default a small image that serves HTTP on 8888).
 */
import t from 'tap'
import pino from 'pino'
import { createKubernetesSpawner } from '../src/kubernetes.js'
import type { SpawnProgress } from '../src/spawner.js'

const kubeconfig = process.env.KUBECONFIG ?? ''
// skipped, saying why, unless a cluster is configured; it runs whenever KUBECONFIG is set
const noCluster = kubeconfig === '' ? 'KUBECONFIG is not set, so there is no cluster to run against' : false

t.test('start, poll and stop one server on the cluster in KUBECONFIG', { skip: noCluster }, async t => {
  const namespace = process.env.FLEETHUB_TEST_NAMESPACE ?? 'default'
  const spawner = createKubernetesSpawner({
    namespace, kubeconfig, instance: `fleethub-test-${process.pid}`,
    image: process.env.FLEETHUB_TEST_IMAGE ?? 'docker.io/library/python:3.12-alpine',
    command: ['python', '-m', 'http.server', '8888'], startTimeoutMs: 240_000,
  }, { log: pino({ level: 'silent' }) })
  t.teardown(() => spawner.close())
  const user = `ci-${process.pid}`
  const spec = { user, serverName: '', prefix: `/user/${user}/`, env: { JUPYTERHUB_USER: user }, userOptions: {} }
  const events: SpawnProgress[] = []
  const result = await spawner.start(spec, { signal: AbortSignal.timeout(300_000), progress: e => events.push(e) })
  t.teardown(() => spawner.stop(result.state, spec))
  t.match(result.url, /^http:\/\/[\d.:[\]a-f]+:8888$/)
  t.ok(events.some(e => /Scheduled|assigned/.test(e.message)), 'progress came from the pod events')
  t.same(await spawner.poll(result.state, spec), { running: true })
  await spawner.stop(result.state, spec)
  t.match(await spawner.poll(result.state, spec), { running: false })
})
