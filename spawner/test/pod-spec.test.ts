import t from 'tap'
import { kubernetesSpawnerConfig } from '../src/kube-config.js'
import {
  buildPodManifest, buildPvcManifest, listProfiles, podBelongsTo, podName, pvcName, resolveProfile, safeSlug,
} from '../src/pod-spec.js'
import type { SpawnSpec } from '../src/spawner.js'

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

function spec(user: string, serverName = '', userOptions: SpawnSpec['userOptions'] = {}): SpawnSpec {
  const prefix = serverName === '' ? `/user/${user}/` : `/user/${user}/${serverName}/`
  return { user, serverName, prefix, env: { JUPYTERHUB_USER: user, JUPYTERHUB_API_TOKEN: 'tok' }, userOptions }
}

t.test('safe names are kept, others are escaped with a hash', async t => {
  const table: Array<[string, string | RegExp]> = [
    ['alice', 'alice'],
    ['bob-2', 'bob-2'],
    ['Alice', /^alice---[0-9a-f]{8}$/],
    ['a.b@example.com', /^a-b-example-com---[0-9a-f]{8}$/],
    ['a--b', /^a-b---[0-9a-f]{8}$/],
    ['-lead', /^lead---[0-9a-f]{8}$/],
    ['ß漢字', /^x---[0-9a-f]{8}$/],
    ['', /^x---[0-9a-f]{8}$/],
  ]
  for (const [name, want] of table) {
    const got = safeSlug(name)
    if (typeof want === 'string') t.equal(got, want, name)
    else t.match(got, want, name)
    t.match(got, DNS_LABEL, `${name} is a DNS label`)
  }
})

t.test('pod names are DNS labels, <= 63 chars and collision-free', async t => {
  const config = kubernetesSpawnerConfig()
  t.equal(podName(config, 'alice', ''), 'jupyter-alice')
  t.equal(podName(config, 'carol', 'foo'), 'jupyter-carol--foo')
  const tricky: Array<[string, string]> = [
    ['alice', ''], ['Alice', ''], ['ALICE', ''], ['alice', 'x'], ['alice-x', ''], ['alice--x', ''],
    ['a', 'b--c'], ['a--b', 'c'], ['a-b', 'c'], ['a', 'b-c'], ['a.b', ''], ['a_b', ''], ['a b', ''],
    ['x'.repeat(200), ''], ['x'.repeat(201), ''], ['x'.repeat(60), 'y'.repeat(60)], ['x'.repeat(60), 'y'.repeat(61)],
    ['user@example.org', 'bad name!'], ['user@example.org', 'bad-name-'], ['', ''], ['-', ''], ['--', ''],
  ]
  const seen = new Map<string, string>()
  for (const [user, server] of tricky) {
    const name = podName(config, user, server)
    t.ok(name.length <= 63, `${name} <= 63`)
    t.match(name, DNS_LABEL, `${JSON.stringify([user, server])} -> ${name}`)
    const key = JSON.stringify([user, server])
    t.notOk(seen.has(name), `${name} is unique (${key} vs ${seen.get(name)})`)
    seen.set(name, key)
  }
  // 2,000 generated look-alikes: still no collision.
  const many = new Set<string>()
  for (let i = 0; i < 2000; i++) many.add(podName(config, `User.${i % 7}-${i}`, i % 3 === 0 ? '' : `S ${i}`))
  t.equal(many.size, 2000)
})

t.test('custom templates and PVC names', async t => {
  const config = kubernetesSpawnerConfig({ podNameTemplate: 'nb-{user}-{servername}', pvc: { enabled: true } })
  t.equal(podName(config, 'alice', 'gpu'), 'nb-alice-gpu')
  t.equal(pvcName(config, 'alice'), 'claim-alice')
  t.match(pvcName(config, 'Alice'), /^claim-alice---[0-9a-f]{8}$/)
  t.throws(() => kubernetesSpawnerConfig({ podNameTemplate: 'static' }), /podNameTemplate must contain \{user\}/)
  t.throws(() => kubernetesSpawnerConfig({ namespace: 'Bad_NS', port: 0 }), /namespace 'Bad_NS'.*port 0/)
})

t.test('labels, annotations, env, security context', async t => {
  const config = kubernetesSpawnerConfig({ namespace: 'hub', instance: 'campus' })
  const pod = buildPodManifest(config, spec('Ann.Lee', 'bad name!'), resolveProfile(config, {}).options) as any
  t.equal(pod.kind, 'Pod')
  t.equal(pod.metadata.namespace, 'hub')
  t.match(pod.metadata.labels, {
    'app.kubernetes.io/name': 'fleethub', 'app.kubernetes.io/component': 'singleuser-server',
    'hub.fleethub.io/instance': 'campus',
  })
  for (const v of Object.values(pod.metadata.labels) as string[]) t.match(v, LABEL_VALUE, `label value ${v}`)
  t.same(pod.metadata.annotations, { 'hub.fleethub.io/username': 'Ann.Lee', 'hub.fleethub.io/servername': 'bad name!' })
  const c = pod.spec.containers[0]
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]))
  t.equal(env.JUPYTERHUB_USER, 'Ann.Lee')
  t.equal(env.JUPYTERHUB_API_TOKEN, 'tok')
  t.equal(env.JUPYTERHUB_SERVICE_URL, 'http://0.0.0.0:8888/user/Ann.Lee/bad name!/')
  t.same(c.ports, [{ name: 'notebook-port', containerPort: 8888, protocol: 'TCP' }])
  t.same(c.securityContext, { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })
  t.match(pod.spec.securityContext, { runAsNonRoot: true, runAsUser: 1000, fsGroup: 100 })
  t.equal(pod.spec.volumes, undefined)
  t.ok(podBelongsTo(pod, 'campus', 'Ann.Lee', 'bad name!'))
  t.notOk(podBelongsTo(pod, 'other-hub', 'Ann.Lee', 'bad name!'))
  t.notOk(podBelongsTo(pod, 'campus', 'Ann.Lee', ''))
})

t.test('resources, GPUs, scheduling, PVC mount', async t => {
  const config = kubernetesSpawnerConfig({
    pvc: { enabled: true, size: '5Gi', storageClass: 'fast' },
    resources: { cpuRequest: '500m', cpuLimit: '2', memoryRequest: '1Gi', memoryLimit: '2Gi', gpus: 1 },
    nodeSelector: { pool: 'users' },
    tolerations: [{ key: 'hub.jupyter.org/dedicated', operator: 'Equal', value: 'user', effect: 'NoSchedule' }],
    affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
    extraEnv: { EXTRA: '1', JUPYTERHUB_SERVICE_URL: 'overridden-on-purpose' },
  })
  const pod = buildPodManifest(config, spec('alice'), resolveProfile(config, {}).options) as any
  const c = pod.spec.containers[0]
  t.same(c.resources, {
    requests: { cpu: '500m', memory: '1Gi', 'nvidia.com/gpu': '1' },
    limits: { cpu: '2', memory: '2Gi', 'nvidia.com/gpu': '1' },
  })
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]))
  t.match(env, { CPU_LIMIT: '2', MEM_GUARANTEE: '1Gi', EXTRA: '1', JUPYTERHUB_SERVICE_URL: 'overridden-on-purpose' })
  t.same(pod.spec.nodeSelector, { pool: 'users' })
  t.equal(pod.spec.tolerations[0].effect, 'NoSchedule')
  t.ok(pod.spec.affinity.nodeAffinity)
  t.same(pod.spec.volumes[0], { name: 'home', persistentVolumeClaim: { claimName: 'claim-alice' } })
  t.same(c.volumeMounts[0], { name: 'home', mountPath: '/home/jovyan' })
  const pvc = buildPvcManifest(config, 'alice') as any
  t.equal(pvc.metadata.name, 'claim-alice')
  t.same(pvc.spec, { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'fast' })
  const bare = buildPodManifest(kubernetesSpawnerConfig(), spec('bob'), resolveProfile(kubernetesSpawnerConfig(), {}).options) as any
  t.same(bare.spec.containers[0].resources, {})
  t.throws(() => buildPodManifest(config, spec('x'), { resources: { gpus: 1.5 } }), { code: 'SPAWNER_BAD_CONFIG' })
})

t.test('profiles: default, chosen, unknown', async t => {
  const config = kubernetesSpawnerConfig({
    image: 'base:1',
    resources: { cpuRequest: '100m', memoryLimit: '1Gi' },
    profiles: [
      { slug: 'small', displayName: 'Small', overrides: {} },
      { slug: 'gpu', displayName: 'GPU', description: 'one GPU', default: true, overrides: { image: 'gpu:1', resources: { gpus: 1, memoryLimit: '8Gi' } } },
    ],
  })
  t.same(listProfiles(config.profiles), [
    { slug: 'small', displayName: 'Small', description: '', default: false },
    { slug: 'gpu', displayName: 'GPU', description: 'one GPU', default: true },
  ])
  const def = resolveProfile(config, {})
  t.equal(def.profile, 'gpu')
  t.equal(def.options.image, 'gpu:1')
  t.same(def.options.resources, { cpuRequest: '100m', memoryLimit: '8Gi', gpus: 1 })
  const small = resolveProfile(config, { profile: 'small' })
  t.equal(small.options.image, 'base:1')
  const pod = buildPodManifest(config, spec('a', '', { profile: 'small' }), small.options, small.profile) as any
  t.equal(pod.metadata.annotations['hub.fleethub.io/profile'], 'small')
  t.throws(() => resolveProfile(config, { profile: 'huge' }), { code: 'SPAWNER_UNKNOWN_PROFILE', message: /unknown profile 'huge'; choose one of: small, gpu/ })
  t.throws(() => resolveProfile(config, { profile: 3 }), { code: 'SPAWNER_UNKNOWN_PROFILE' })
  t.throws(() => resolveProfile(kubernetesSpawnerConfig(), { profile: 'x' }), { code: 'SPAWNER_UNKNOWN_PROFILE' })
  t.throws(() => kubernetesSpawnerConfig({ profiles: [
    { slug: 'a', displayName: 'A', default: true, overrides: {} }, { slug: 'a', displayName: 'B', default: true, overrides: {} }] }),
  /used twice.*more than one profile/)
})

t.test('default URL: the hub\'s JUPYTERHUB_DEFAULT_URL, replaced by the spawner config\'s or a profile\'s', async t => {
  const envOf = (pod: any): Record<string, string> => Object.fromEntries(pod.spec.containers[0].env.map((e: any) => [e.name, e.value]))
  const fromHub: SpawnSpec = { ...spec('alice'), env: { JUPYTERHUB_USER: 'alice', JUPYTERHUB_DEFAULT_URL: '/tree' } }
  const plain = kubernetesSpawnerConfig()
  t.equal(envOf(buildPodManifest(plain, fromHub, resolveProfile(plain, {}).options)).JUPYTERHUB_DEFAULT_URL, '/tree', 'the hub\'s --default-url passes through')
  t.notOk('JUPYTERHUB_DEFAULT_URL' in envOf(buildPodManifest(plain, spec('alice'), resolveProfile(plain, {}).options)), 'none set: none sent')

  const config = kubernetesSpawnerConfig({
    defaultUrl: '/lab',
    profiles: [
      { slug: 'lab', displayName: 'JupyterLab', default: true, overrides: {} },
      { slug: 'classic', displayName: 'Classic', overrides: { defaultUrl: '/tree' } },
      { slug: 'home', displayName: 'Home', overrides: { defaultUrl: '/tree/home/{username}', extraEnv: { X: '1' } } },
      { slug: 'pinned', displayName: 'Pinned', overrides: { defaultUrl: '/lab', extraEnv: { JUPYTERHUB_DEFAULT_URL: '/doc' } } },
    ],
  })
  const landing = (user: string, profile: string): string => {
    const chosen = resolveProfile(config, { profile })
    return envOf(buildPodManifest(config, { ...spec(user, '', { profile }), env: fromHub.env }, chosen.options, chosen.profile)).JUPYTERHUB_DEFAULT_URL
  }
  t.equal(landing('alice', 'lab'), '/lab', 'the spawner config\'s replaces the hub\'s')
  t.equal(landing('alice', 'classic'), '/tree', 'a profile overrides it (KubeSpawner profile_list default_url)')
  t.equal(landing('a b@x', 'home'), '/tree/home/a%20b@x', '{username} expands, escaped for a URL path')
  t.equal(landing('alice', 'pinned'), '/doc', 'extraEnv still has the last word')

  t.throws(() => kubernetesSpawnerConfig({ defaultUrl: 'lab' }), /defaultUrl: expected a path starting with '\/' \(such as \/lab or \/tree\), got "lab"/)
  t.throws(() => kubernetesSpawnerConfig({ profiles: [{ slug: 'x', displayName: 'X', overrides: { defaultUrl: '//evil.example' } }] }),
    /profile 'x' defaultUrl: .*'\/\/' starts a host/)
})
