/**
 * The rendered manifests hold together (names, selectors, ports, Secret refs, NetworkPolicies
 * that select the spawner's pods) and the hub's Role grants exactly the verbs/resources the
 * spawner used against kube-sim in a scenario that exercises every call it makes.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import pino from 'pino'
import { parse, parseAllDocuments } from 'yaml'
import { parseHubConfig } from '../../hub/src/config.js'
import { createKubeSim } from '../../kube-sim/src/index.js'
import { parseProxyConfig } from '../../proxy/src/config.js'
import { kubernetesSpawnerConfig } from '../../spawner/src/kube-config.js'
import { createKubernetesSpawner } from '../../spawner/src/kubernetes.js'
import { buildPodManifest, resolveProfile } from '../../spawner/src/pod-spec.js'
import { renderFromFiles } from '../src/main.js'
import { renderObjects, spawnerConfig } from '../src/render.js'
import type { K8sObject } from '../src/render.js'
import { DEFAULT_VALUES, resolveValues } from '../src/values.js'

const here = path.dirname(fileURLToPath(import.meta.url))

const find = (objs: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objs.find(x => x.kind === kind && x.metadata.name === name)
  if (o === undefined) throw new Error(`no ${kind} ${name}`)
  return o
}
const subset = (sel: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v)

t.test('deploy/values.yaml documents exactly the built-in defaults', async t => {
  const file = parse(await readFile(path.join(here, '..', 'values.yaml'), 'utf8'))
  t.same(resolveValues(file), DEFAULT_VALUES)
})

t.test('every object is well formed; selectors, ports and Secret refs agree', async t => {
  const v = resolveValues({ namespace: 'campus', name: 'hubx', secrets: { create: true, databaseUrl: 'postgres://u:p@db:5432/hub', proxyAuthToken: 'tok' }, createNamespace: true })
  const objs = renderObjects(v)
  const kinds = objs.map(o => o.kind)
  t.same(kinds, ['Namespace', 'Secret', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Deployment', 'Service', 'Deployment', 'Service', 'Service',
    'NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy'])
  for (const o of objs) {
    t.match(o.apiVersion, /^(v1|apps\/v1|rbac\.authorization\.k8s\.io\/v1|networking\.k8s\.io\/v1)$/, `${o.kind} apiVersion`)
    t.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${o.kind} name`)
    if (o.kind !== 'Namespace') t.equal(o.metadata.namespace, 'campus', `${o.kind} ${o.metadata.name} namespace`)
  }
  const deployments = objs.filter(o => o.kind === 'Deployment')
  for (const d of deployments) t.ok(subset(d.spec.selector.matchLabels, d.spec.template.metadata.labels), `${d.metadata.name} selects its own pods`)
  // Each Service selects exactly one Deployment's pods and targets a named port they declare.
  for (const svc of objs.filter(o => o.kind === 'Service')) {
    const targets = deployments.filter(d => subset(svc.spec.selector, d.spec.template.metadata.labels))
    t.equal(targets.length, 1, `${svc.metadata.name} selects one deployment`)
    const portNames = targets[0].spec.template.spec.containers[0].ports.map((p: any) => p.name)
    for (const p of svc.spec.ports) t.ok(portNames.includes(p.targetPort), `${svc.metadata.name} -> ${p.targetPort}`)
  }
  const hub = find(objs, 'Deployment', 'hubx-hub')
  const proxy = find(objs, 'Deployment', 'hubx-proxy')
  t.equal(hub.spec.template.spec.serviceAccountName, 'hubx-hub')
  t.same(hub.spec.template.spec.containers[0].ports, [{ name: 'hub', containerPort: 8081, protocol: 'TCP' }])
  t.same(find(objs, 'Service', 'hubx-proxy-api').spec.ports[0], { name: 'api', port: 8001, targetPort: 'api', protocol: 'TCP' })
  t.same(find(objs, 'Service', 'hubx-proxy-public').spec, { type: 'LoadBalancer', selector: proxy.spec.selector.matchLabels, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] })
  // Commands: the hub talks to the proxy API Service; the proxy's default target is the hub Service.
  t.same(hub.spec.template.spec.containers[0].command, ['fleethub', 'hub', '--config', '/etc/fleethub/hub.json', '--proxy', 'external'])
  const pcmd: string[] = proxy.spec.template.spec.containers[0].command
  t.same(pcmd.slice(0, 2), ['fleethub', 'proxy'])
  t.equal(pcmd[pcmd.indexOf('--default-target') + 1], 'http://hubx-hub.campus.svc:8081')
  t.equal(pcmd[pcmd.indexOf('--port') + 1], '8000')
  t.equal(pcmd[pcmd.indexOf('--api-port') + 1], '8001')
  const hubJson = JSON.parse(find(objs, 'ConfigMap', 'hubx-hub-config').data['hub.json'])
  t.match(hubJson, { spawner: 'kubernetes', proxy: 'external', proxyApiUrl: 'http://hubx-proxy-api.campus.svc:8001', hubConnectUrl: 'http://hubx-hub.campus.svc:8081', hubPort: 8081 })
  t.match(hubJson.kubernetes, { namespace: 'campus', instance: 'hubx', port: 8888, pvc: { enabled: true, size: '10Gi' } })
  t.same(hub.spec.template.spec.volumes[0], { name: 'config', configMap: { name: 'hubx-hub-config' } })
  // Secret refs all point at the one Secret, at keys it has.
  const secret = find(objs, 'Secret', 'fleethub-secrets')
  const refs = [...hub.spec.template.spec.containers[0].env, ...proxy.spec.template.spec.containers[0].env].filter((e: any) => e.valueFrom !== undefined).map((e: any) => e.valueFrom.secretKeyRef)
  t.same(refs.map(r => r.name), ['fleethub-secrets', 'fleethub-secrets', 'fleethub-secrets', 'fleethub-secrets'])
  for (const r of refs) t.ok(r.optional === true || r.key in secret.stringData, `secret key ${r.key}${r.optional ? ' (optional)' : ''}`)
  t.same(hub.spec.template.spec.containers[0].env.map((e: any) => e.name), ['DATABASE_URL', 'CONFIGPROXY_AUTH_TOKEN', 'FLEETHUB_OIDC_STATE_SECRET', 'FLEETHUB_DATA_DIR'])
  const binding = find(objs, 'RoleBinding', 'hubx-hub')
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'hubx-hub', namespace: 'campus' }])
  t.equal(binding.roleRef.name, find(objs, 'Role', 'hubx-hub').metadata.name)
})

t.test('NetworkPolicies select the pods the spawner creates and let only the proxy and hub in', async t => {
  const v = resolveValues({ name: 'hubx', namespace: 'campus' })
  const objs = renderObjects(v)
  const cfg = kubernetesSpawnerConfig(spawnerConfig(v))
  const spec = { user: 'alice', serverName: '', prefix: '/user/alice/', env: {}, userOptions: {} }
  const userPod = buildPodManifest(cfg, spec, resolveProfile(cfg, {}).options) as K8sObject
  const podLabels = (name: string): Record<string, string> => find(objs, 'Deployment', name).spec.template.metadata.labels
  const su = find(objs, 'NetworkPolicy', 'hubx-singleuser')
  t.ok(subset(su.spec.podSelector.matchLabels, userPod.metadata.labels), 'selects user pods')
  t.notOk(subset(su.spec.podSelector.matchLabels, podLabels('hubx-hub')), 'not the hub')
  t.same(su.spec.policyTypes, ['Ingress', 'Egress'])
  const allowedIn = su.spec.ingress[0].from.map((f: any) => f.podSelector.matchLabels)
  t.equal(allowedIn.length, 2)
  t.ok(allowedIn.some((s: any) => subset(s, podLabels('hubx-proxy'))) && allowedIn.some((s: any) => subset(s, podLabels('hubx-hub'))), 'ingress from proxy and hub only')
  t.same(su.spec.ingress[0].ports, [{ protocol: 'TCP', port: userPod.spec.containers[0].ports[0].containerPort }])
  t.equal(su.spec.egress.length, 2, 'egress: hub API and DNS, nothing else')
  t.ok(subset(su.spec.egress[0].to[0].podSelector.matchLabels, podLabels('hubx-hub')))
  t.same(su.spec.egress[0].ports, [{ protocol: 'TCP', port: 8081 }])
  t.same(su.spec.egress[1].ports.map((p: any) => p.port), [53, 53])
  const pol = find(objs, 'NetworkPolicy', 'hubx-proxy')
  t.ok(subset(pol.spec.ingress[1].from[0].podSelector.matchLabels, podLabels('hubx-hub')), 'proxy API only from the hub')
  t.equal(renderObjects(resolveValues({ networkPolicy: { enabled: false } })).filter(o => o.kind === 'NetworkPolicy').length, 0)
})

t.test('the Role grants exactly what the spawner used against kube-sim', async t => {
  const sim = await createKubeSim({ namespaces: ['campus'] })
  t.teardown(() => sim.close())
  const v = resolveValues({ name: 'hubx', namespace: 'campus' })
  const spawner = createKubernetesSpawner({ ...spawnerConfig(v), deleteOrphans: true, startTimeoutMs: 20_000 }, { log: pino({ level: 'silent' }), kubeconfigObject: sim.kubeconfig('campus') })
  t.teardown(() => spawner.close())
  const spec = (user: string): { user: string, serverName: string, prefix: string, env: Record<string, string>, userOptions: {} } =>
    ({ user, serverName: '', prefix: `/user/${user}/`, env: { JUPYTERHUB_USER: user }, userOptions: {} })
  const o = { signal: AbortSignal.timeout(30_000), progress: () => {} }
  // A foreign pod squatting a server's name makes the spawner read it (get) and replace it.
  await fetch(`${sim.url}/api/v1/namespaces/campus/pods`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ metadata: { name: 'jupyter-amy' }, spec: { containers: [{ name: 'x', image: 'x' }] } }) })
  const a = await spawner.start(spec('amy'), o)
  await spawner.start(spec('bob'), o)
  await spawner.poll(a.state, spec('amy'))
  await spawner.stop(a.state, spec('amy'))
  await spawner.findOrphans([])
  const used = new Map<string, Set<string>>()
  for (const r of sim.requests()) {
    if (r.status >= 500 || !r.path.startsWith('/api/v1/namespaces/campus/')) continue
    const set = used.get(r.resource) ?? new Set()
    set.add(r.verb)
    used.set(r.resource, set)
  }
  const role = find(renderObjects(v), 'Role', 'hubx-hub')
  const granted = new Map<string, Set<string>>(role.rules.map((rule: any) => [rule.resources[0], new Set(rule.verbs)]))
  for (const rule of role.rules) t.same(rule.apiGroups, [''])
  const asObject = (m: Map<string, Set<string>>): Record<string, string[]> => Object.fromEntries([...m].map(([k, s]) => [k, [...s].sort()]).sort())
  t.same(asObject(granted), asObject(used), 'Role == recorded verbs per resource')
})

t.test('singleuser.defaultUrl (z2jh) reaches the spawner config; a profile may override it; a bad one is refused', async t => {
  t.notOk('defaultUrl' in spawnerConfig(resolveValues({})), 'unset by default: the server\'s own')
  const v = resolveValues({ singleuser: { defaultUrl: '/lab', profiles: [
    { slug: 'lab', displayName: 'Lab', default: true, overrides: {} },
    { slug: 'classic', displayName: 'Classic', overrides: { defaultUrl: '/tree' } },
  ] } })
  const cfg = kubernetesSpawnerConfig(spawnerConfig(v))
  t.equal(resolveProfile(cfg, {}).options.defaultUrl, '/lab')
  t.equal(resolveProfile(cfg, { profile: 'classic' }).options.defaultUrl, '/tree')
  t.throws(() => spawnerConfig(resolveValues({ singleuser: { defaultUrl: 'lab' } })), /defaultUrl: expected a path starting with '\/'/)
})

t.test('bad values are refused with every problem listed; the CLI renders parseable YAML', async t => {
  t.throws(() => resolveValues({ name: 'Bad Name', proxy: { port: 8001, apiPort: 8001, service: { type: 'Ingress' } }, secrets: { create: true }, bogus: 1 }),
    /values\.bogus: unknown setting[\s\S]*name: 'Bad Name'[\s\S]*must differ[\s\S]*Ingress[\s\S]*secrets\.create/)
  t.throws(() => spawnerConfig(resolveValues({ singleuser: { profiles: [{ slug: 'A B', displayName: 'x', overrides: {} }] } })), /profile slug 'A B'/)
  const dir = await mkdtemp(path.join(tmpdir(), 'fleethub-deploy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'values.yaml')
  await writeFile(file, 'namespace: lab\nproxy:\n  service:\n    type: ClusterIP\n')
  const text = await renderFromFiles([file], 'lab2')
  const docs = parseAllDocuments(text).map(d => d.toJS())
  t.equal(docs.length, 12)
  t.ok(docs.every(d => d.metadata.namespace === 'lab2'))
  t.equal(docs.find(d => d.kind === 'Service' && d.metadata.name === 'fleethub-proxy-public').spec.type, 'ClusterIP')
})

t.test('hub.replicas: a rolling update, a PodDisruptionBudget, probes, a preStop drain and the env every replica must share', async t => {
  const one = renderObjects(resolveValues({}))
  t.notOk(one.some(o => o.kind === 'PodDisruptionBudget'), 'one replica: no budget (it would block every node drain)')

  const v = resolveValues({ name: 'campus', hub: { replicas: 3 } })
  const objs = renderObjects(v)
  const hub = find(objs, 'Deployment', 'campus-hub')
  t.equal(hub.spec.replicas, 3)
  t.same(hub.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }, 'a new replica is up before an old one goes')
  const pdb = find(objs, 'PodDisruptionBudget', 'campus-hub')
  t.equal(pdb.apiVersion, 'policy/v1')
  t.equal(pdb.spec.maxUnavailable, 1)
  t.ok(subset(pdb.spec.selector.matchLabels, hub.spec.template.metadata.labels), 'the budget selects the hub pods')
  t.notOk(subset(pdb.spec.selector.matchLabels, find(objs, 'Deployment', 'campus-proxy').spec.template.metadata.labels), 'and not the proxies')

  const pod = hub.spec.template.spec
  const c = pod.containers[0]
  t.match(c.readinessProbe, { httpGet: { path: '/hub/health', port: 'hub' } }, 'readiness: a replica gets traffic once it answers')
  t.match(c.livenessProbe, { httpGet: { path: '/hub/health', port: 'hub' } })
  t.match(c.lifecycle.preStop.exec.command, ['node', '-e', /setTimeout/], 'preStop keeps serving while the endpoint removal spreads')
  t.ok(pod.terminationGracePeriodSeconds >= 35 + 5, `the grace period covers preStop and the drain (${pod.terminationGracePeriodSeconds} s)`)
  const env = Object.fromEntries(c.env.map((e: K8sObject) => [e.name, e.valueFrom?.secretKeyRef]))
  t.match(env, {
    DATABASE_URL: { name: v.secrets.name, key: 'database-url' },
    CONFIGPROXY_AUTH_TOKEN: { name: v.secrets.name, key: 'proxy-auth-token' },
    FLEETHUB_OIDC_STATE_SECRET: { name: v.secrets.name, key: 'oidc-state-secret', optional: true },
  }, 'every replica reads the shared secrets from the one Secret')
  const config = JSON.parse(find(objs, 'ConfigMap', 'campus-hub-config').data['hub.json'])
  t.match(config, { proxy: 'external', cleanupServers: false }, 'replicas share one external proxy and never stop the fleet\'s servers when one goes')
})

t.test('proxy.routes: db runs a fleet of proxies on the routes in Postgres (issue #15)', async t => {
  const v = resolveValues({ name: 'campus', proxy: { routes: 'db', replicas: 3, workers: 2 }, secrets: { create: true, databaseUrl: 'postgres://u:p@db:5432/hub', proxyAuthToken: 'tok' } })
  const objs = renderObjects(v)
  const hub = find(objs, 'Deployment', 'campus-hub')
  const proxy = find(objs, 'Deployment', 'campus-proxy')
  t.equal(proxy.spec.replicas, 3)
  const c = proxy.spec.template.spec.containers[0]
  t.ok(c.command.includes('--routes-from-db'), 'the proxy loads and follows the routes in the database')
  t.equal(c.command[c.command.indexOf('--workers') + 1], '2')
  t.equal(c.command[c.command.indexOf('--default-target') + 1], 'http://campus-hub.jupyter.svc:8081', 'still the hub for /')
  t.equal(c.command[c.command.indexOf('--error-target') + 1], 'http://campus-hub.jupyter.svc:8081/hub/error')
  const dbEnv = (container: K8sObject): K8sObject => container.env.find((e: K8sObject) => e.name === 'DATABASE_URL')
  t.same(dbEnv(c), { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'fleethub-secrets', key: 'database-url' } } })
  t.same(dbEnv(c), dbEnv(hub.spec.template.spec.containers[0]), 'the same database, from the same Secret, as the hub')
  t.ok('database-url' in find(objs, 'Secret', 'fleethub-secrets').stringData)
  t.match(c.readinessProbe, { tcpSocket: { port: 'http' } }, 'ready once listening, which is after the table is loaded')
  // The rendered command is one the proxy accepts, in route-store mode.
  const pc = parseProxyConfig(c.command.slice(2), { DATABASE_URL: 'postgres://u:p@db:5432/hub', CONFIGPROXY_AUTH_TOKEN: 'tok' })
  t.match(pc, { routesFromDb: { databaseUrl: 'postgres://u:p@db:5432/hub' }, workers: 2, port: 8000, apiPort: 8001 })

  const hubJson = JSON.parse(find(objs, 'ConfigMap', 'campus-hub-config').data['hub.json'])
  t.match(hubJson, { proxy: 'external', proxyRoutes: 'db', proxyApiUrl: 'http://campus-proxy-api.jupyter.svc:8001' }, 'the hub writes no routes through the API')
  t.ok(find(objs, 'Service', 'campus-proxy-api'), 'the proxy API Service stays: the hub reads GET /api/routes for its admin pages')
  // The hub accepts that config file with the command the Deployment gives it.
  const dir = await mkdtemp(path.join(tmpdir(), 'fleethub-deploy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'hub.json'), find(objs, 'ConfigMap', 'campus-hub-config').data['hub.json'])
  const hubArgs = hub.spec.template.spec.containers[0].command.slice(2).map((a: string) => a === '/etc/fleethub/hub.json' ? path.join(dir, 'hub.json') : a)
  t.match(parseHubConfig(hubArgs, { DATABASE_URL: 'postgres://u:p@db:5432/hub', CONFIGPROXY_AUTH_TOKEN: 'tok' }, dir), { proxy: 'external', proxyRoutes: 'db' })

  const pdb = find(objs, 'PodDisruptionBudget', 'campus-proxy')
  t.equal(pdb.spec.maxUnavailable, 1)
  t.ok(subset(pdb.spec.selector.matchLabels, proxy.spec.template.metadata.labels), 'the budget selects the proxy pods')
  t.notOk(subset(pdb.spec.selector.matchLabels, hub.spec.template.metadata.labels), 'and not the hubs')

  const single = renderObjects(resolveValues({ proxy: { routes: 'db' } }))
  t.notOk(single.some(o => o.kind === 'PodDisruptionBudget'), 'one proxy: no budget')
  const cmd: string[] = find(single, 'Deployment', 'fleethub-proxy').spec.template.spec.containers[0].command
  t.ok(cmd.includes('--routes-from-db'))
  t.notOk(cmd.includes('--workers'), 'one worker: the flag is left out')
})

t.test('proxy.routes: api (the default) refuses more than one proxy; the default output is unchanged', async t => {
  t.throws(() => resolveValues({ proxy: { replicas: 2 } }),
    /proxy\.replicas: 2 needs proxy\.routes: db \(with routes: api each proxy replica keeps its own routing table in memory/)
  t.throws(() => resolveValues({ proxy: { routes: 'api', workers: 4 } }), /proxy\.workers: 4 needs proxy\.routes: db/)
  t.throws(() => resolveValues({ proxy: { routes: 'redis', replicas: 0 } }), /proxy\.routes: 'redis' is not api or db[\s\S]*proxy\.replicas: 0 is not a whole number/)
  t.throws(() => resolveValues({ proxy: { routes: 'db', workers: 65 } }), /proxy\.workers: 65 is more than/)

  const objs = renderObjects(resolveValues({}))
  t.same(renderObjects(resolveValues({ proxy: { routes: 'api', replicas: 1, workers: 1 } })), objs, 'explicit api mode = the default')
  const c = find(objs, 'Deployment', 'fleethub-proxy').spec.template.spec.containers[0]
  t.same(c.command, ['fleethub', 'proxy', '--ip', '0.0.0.0', '--port', '8000', '--api-ip', '0.0.0.0', '--api-port', '8001',
    '--default-target', 'http://fleethub-hub.jupyter.svc:8081', '--error-target', 'http://fleethub-hub.jupyter.svc:8081/hub/error', '--log-level', 'info'])
  t.same(c.env.map((e: K8sObject) => e.name), ['CONFIGPROXY_AUTH_TOKEN'], 'the CHP-compatible proxy needs no database')
  t.equal(find(objs, 'Deployment', 'fleethub-proxy').spec.replicas, 1)
  t.notOk('proxyRoutes' in JSON.parse(find(objs, 'ConfigMap', 'fleethub-hub-config').data['hub.json']), 'the hub writes routes through the proxy API')
  t.notOk(objs.some(o => o.kind === 'PodDisruptionBudget'))
})
