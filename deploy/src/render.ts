/**
 * Values -> the Kubernetes objects that run fleethub on a cluster. Pure: the CLI turns the list
 * into multi-document YAML for `kubectl apply -f -`.
 */
import { kubernetesSpawnerConfig } from '../../spawner/src/kube-config.js'
import type { KubernetesSpawnerConfigInput } from '../../spawner/src/kube-config.js'
import { spawnerApiUsage } from '../../spawner/src/kube-rbac.js'
import { commonLabels } from '../../spawner/src/pod-spec.js'
import type { Values } from './values.js'

export type K8sObject = Record<string, any>

export const SECRET_DATABASE_URL = 'database-url'
export const SECRET_PROXY_TOKEN = 'proxy-auth-token'
/** Optional: the OIDC state key every hub replica must share (FLEETHUB_OIDC_STATE_SECRET). */
export const SECRET_OIDC_STATE = 'oidc-state-secret'
const CONFIG_PATH = '/etc/fleethub/hub.json'

/** Names of everything rendered, derived from `values.name`. */
export function names(v: Values): Record<'hub' | 'proxy' | 'proxyPublic' | 'proxyApi' | 'config', string> {
  return { hub: `${v.name}-hub`, proxy: `${v.name}-proxy`, proxyPublic: `${v.name}-proxy-public`, proxyApi: `${v.name}-proxy-api`, config: `${v.name}-hub-config` }
}

function labels(v: Values, component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'fleethub', 'app.kubernetes.io/instance': v.name, 'app.kubernetes.io/component': component, 'app.kubernetes.io/managed-by': 'fleethub-deploy' }
}

function selector(v: Values, component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'fleethub', 'app.kubernetes.io/instance': v.name, 'app.kubernetes.io/component': component }
}

function meta(v: Values, name: string, component: string): K8sObject {
  return { name, namespace: v.namespace, labels: labels(v, component) }
}

/** The Kubernetes spawner's settings, as the hub reads them from the `kubernetes` key of its config file. */
export function spawnerConfig(v: Values): KubernetesSpawnerConfigInput {
  const s = v.singleuser
  const input: KubernetesSpawnerConfigInput = {
    namespace: v.namespace, instance: v.name, image: s.image, imagePullPolicy: s.imagePullPolicy, command: s.command, port: s.port,
    resources: s.resources, nodeSelector: s.nodeSelector, tolerations: s.tolerations, extraEnv: s.extraEnv,
    deleteGracePeriodSeconds: s.deleteGracePeriodSeconds, apiRateLimit: s.apiRateLimit, deleteOrphans: s.deleteOrphans,
    startTimeoutMs: v.hub.startTimeout * 1000, profiles: s.profiles, ...(s.defaultUrl !== '' ? { defaultUrl: s.defaultUrl } : {}),
    pvc: { enabled: s.storage.enabled, size: s.storage.size, mountPath: s.storage.mountPath, ...(s.storage.storageClass !== '' ? { storageClass: s.storage.storageClass } : {}) },
  }
  kubernetesSpawnerConfig(input) // validates (profiles, names, ...) with the spawner's own rules
  return input
}

function hubConfigFile(v: Values): Record<string, unknown> {
  const n = names(v)
  return {
    spawner: 'kubernetes',
    hubIp: '0.0.0.0',
    hubPort: v.hub.port,
    hubConnectUrl: `http://${n.hub}.${v.namespace}.svc:${v.hub.port}`,
    proxy: 'external',
    proxyApiUrl: `http://${n.proxyApi}.${v.namespace}.svc:${v.proxy.apiPort}`,
    // Routes in Postgres: the hub writes none through the proxy API (it still reads GET /api/routes).
    ...(v.proxy.routes === 'db' ? { proxyRoutes: 'db' } : {}),
    adminUsers: v.hub.adminUsers,
    concurrentSpawnLimit: v.hub.concurrentSpawnLimit,
    startTimeout: v.hub.startTimeout,
    cleanupServers: false,
    environment: v.hub.environment,
    logLevel: v.hub.logLevel,
    kubernetes: spawnerConfig(v),
  }
}

const secretEnv = (v: Values, name: string, key: string, optional = false): K8sObject =>
  ({ name, valueFrom: { secretKeyRef: { name: v.secrets.name, key, ...(optional ? { optional: true } : {}) } } })

/** Seconds a stopping hub pod keeps serving before SIGTERM (endpoint removal reaching the proxies). */
export const PRESTOP_DELAY_S = 5
/** Seconds `fleethub hub` gives requests and spawns in flight after SIGTERM (hub/src/main.ts). */
export const HUB_DRAIN_S = 30

const containerSecurity = { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } }

function hubObjects(v: Values): K8sObject[] {
  const n = names(v)
  const rules = spawnerApiUsage({ pvc: { enabled: v.singleuser.storage.enabled } as never })
    .map(u => ({ apiGroups: [''], resources: [u.resource], verbs: [...u.verbs] }))
  const deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(v, n.hub, 'hub'),
    spec: {
      replicas: v.hub.replicas,
      // Replicas share the one Postgres (leases for the singleton loops, row claims for spawns,
      // NOTIFY for caches and progress), so an update replaces them one at a time: a new pod takes
      // traffic once ready, then an old one drains and goes.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      selector: { matchLabels: selector(v, 'hub') },
      template: {
        metadata: { labels: labels(v, 'hub') },
        spec: {
          serviceAccountName: n.hub,
          terminationGracePeriodSeconds: PRESTOP_DELAY_S + HUB_DRAIN_S + 15,
          securityContext: { runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'hub', image: `${v.image.repository}:${v.image.tag}`, imagePullPolicy: v.image.pullPolicy,
            command: ['fleethub', 'hub', '--config', CONFIG_PATH, '--proxy', 'external'],
            // What every replica must share: the database, the proxy's token, and the key of the OIDC
            // sign-in's state cookie (a sign-in started on one replica returns to any other).
            env: [secretEnv(v, 'DATABASE_URL', SECRET_DATABASE_URL), secretEnv(v, 'CONFIGPROXY_AUTH_TOKEN', SECRET_PROXY_TOKEN),
              secretEnv(v, 'FLEETHUB_OIDC_STATE_SECRET', SECRET_OIDC_STATE, true),
              // The root filesystem is read-only; nothing of value is written locally with DATABASE_URL set.
              { name: 'FLEETHUB_DATA_DIR', value: '/tmp/fleethub' }],
            ports: [{ name: 'hub', containerPort: v.hub.port, protocol: 'TCP' }],
            // /hub/health answers 503 until the hub is ready (and while it drains), so the Service
            // sends a replica nothing before it can serve.
            readinessProbe: { httpGet: { path: '/hub/health', port: 'hub' }, periodSeconds: 5 },
            livenessProbe: { httpGet: { path: '/hub/health', port: 'hub' }, periodSeconds: 10, failureThreshold: 6, initialDelaySeconds: 30 },
            // The endpoint removal reaches the proxies a moment after the pod is told to stop: keep
            // serving for it, then SIGTERM drains requests and spawns in flight.
            lifecycle: { preStop: { exec: { command: ['node', '-e', `setTimeout(() => {}, ${PRESTOP_DELAY_S * 1000})`] } } },
            resources: v.hub.resources,
            securityContext: containerSecurity,
            volumeMounts: [{ name: 'config', mountPath: '/etc/fleethub', readOnly: true }, { name: 'tmp', mountPath: '/tmp' }],
          }],
          volumes: [{ name: 'config', configMap: { name: n.config } }, { name: 'tmp', emptyDir: {} }],
        },
      },
    },
  }
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(v, n.hub, 'hub') },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(v, n.hub, 'hub'), rules },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(v, n.hub, 'hub'),
      subjects: [{ kind: 'ServiceAccount', name: n.hub, namespace: v.namespace }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: n.hub } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(v, n.config, 'hub'), data: { 'hub.json': JSON.stringify(hubConfigFile(v), null, 2) + '\n' } },
    deployment,
    ...(v.hub.replicas > 1 ? [{ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(v, n.hub, 'hub'),
      spec: { maxUnavailable: 1, selector: { matchLabels: selector(v, 'hub') } } }] : []),
    { apiVersion: 'v1', kind: 'Service', metadata: meta(v, n.hub, 'hub'),
      spec: { type: 'ClusterIP', selector: selector(v, 'hub'), ports: [{ name: 'hub', port: v.hub.port, targetPort: 'hub', protocol: 'TCP' }] } },
  ]
}

/**
 * Route-store mode (`proxy.routes: db`, issue #15): every proxy loads the routing table from the
 * hub's database and follows it (LISTEN/NOTIFY), and writes its routes' activity there itself.
 */
function routeStoreArgs(v: Values): { args: string[], env: K8sObject[] } {
  if (v.proxy.routes !== 'db') return { args: [], env: [] }
  return {
    args: ['--routes-from-db', ...(v.proxy.workers > 1 ? ['--workers', String(v.proxy.workers)] : [])],
    env: [secretEnv(v, 'DATABASE_URL', SECRET_DATABASE_URL)],
  }
}

function proxyObjects(v: Values): K8sObject[] {
  const n = names(v)
  const hubUrl = `http://${n.hub}.${v.namespace}.svc:${v.hub.port}`
  const store = routeStoreArgs(v)
  return [
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(v, n.proxy, 'proxy'),
      spec: {
        replicas: v.proxy.replicas,
        selector: { matchLabels: selector(v, 'proxy') },
        template: {
          metadata: { labels: labels(v, 'proxy') },
          spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [{
              name: 'proxy', image: `${v.image.repository}:${v.image.tag}`, imagePullPolicy: v.image.pullPolicy,
              command: ['fleethub', 'proxy', '--ip', '0.0.0.0', '--port', String(v.proxy.port), '--api-ip', '0.0.0.0', '--api-port', String(v.proxy.apiPort),
                '--default-target', hubUrl, '--error-target', `${hubUrl}/hub/error`, '--log-level', v.proxy.logLevel, ...store.args],
              env: [secretEnv(v, 'CONFIGPROXY_AUTH_TOKEN', SECRET_PROXY_TOKEN), ...store.env],
              ports: [{ name: 'http', containerPort: v.proxy.port, protocol: 'TCP' }, { name: 'api', containerPort: v.proxy.apiPort, protocol: 'TCP' }],
              // With routes from the database a proxy loads the whole table before it listens, so an
              // open port already means no 404 for a running server: this probe needs nothing more.
              readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 10, failureThreshold: 6 },
              resources: v.proxy.resources,
              securityContext: containerSecurity,
            }],
          },
        },
      },
    },
    ...(v.proxy.replicas > 1 ? [{ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(v, n.proxy, 'proxy'),
      spec: { maxUnavailable: 1, selector: { matchLabels: selector(v, 'proxy') } } }] : []),
    { apiVersion: 'v1', kind: 'Service', metadata: meta(v, n.proxyPublic, 'proxy'),
      spec: { type: v.proxy.service.type, selector: selector(v, 'proxy'), ports: [{ name: 'http', port: v.proxy.service.port, targetPort: 'http', protocol: 'TCP' }] } },
    // Kept in db mode too: the hub reads GET /api/routes for its admin pages (any proxy answers).
    { apiVersion: 'v1', kind: 'Service', metadata: meta(v, n.proxyApi, 'proxy'),
      spec: { type: 'ClusterIP', selector: selector(v, 'proxy'), ports: [{ name: 'api', port: v.proxy.apiPort, targetPort: 'api', protocol: 'TCP' }] } },
  ]
}

function networkPolicies(v: Values): K8sObject[] {
  const n = names(v)
  const userPods = commonLabels(v.name)
  const from = (component: string): K8sObject => ({ podSelector: { matchLabels: selector(v, component) } })
  const dns = { to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
    ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }
  const np = (name: string, component: string, podSelector: K8sObject, spec: K8sObject): K8sObject =>
    ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta(v, name, component), spec: { podSelector, ...spec } })
  return [
    np(`${v.name}-singleuser`, 'singleuser-server', { matchLabels: userPods }, {
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [from('proxy'), from('hub')], ports: [{ protocol: 'TCP', port: v.singleuser.port }] }],
      egress: [{ to: [from('hub')], ports: [{ protocol: 'TCP', port: v.hub.port }] }, dns, ...v.networkPolicy.singleuserExtraEgress],
    }),
    np(n.hub, 'hub', { matchLabels: selector(v, 'hub') }, {
      policyTypes: ['Ingress'],
      ingress: [{ from: [from('proxy'), { podSelector: { matchLabels: userPods } }], ports: [{ protocol: 'TCP', port: v.hub.port }] }],
    }),
    np(n.proxy, 'proxy', { matchLabels: selector(v, 'proxy') }, {
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'TCP', port: v.proxy.port }] },
        { from: [from('hub')], ports: [{ protocol: 'TCP', port: v.proxy.apiPort }] },
      ],
    }),
  ]
}

/** Every object, in the order `kubectl apply` needs (namespace and secret first). */
export function renderObjects(v: Values): K8sObject[] {
  const out: K8sObject[] = []
  if (v.createNamespace) out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: v.namespace, labels: labels(v, 'namespace') } })
  if (v.secrets.create) {
    out.push({ apiVersion: 'v1', kind: 'Secret', metadata: meta(v, v.secrets.name, 'secrets'), type: 'Opaque',
      stringData: { [SECRET_DATABASE_URL]: v.secrets.databaseUrl, [SECRET_PROXY_TOKEN]: v.secrets.proxyAuthToken } })
  }
  out.push(...hubObjects(v), ...proxyObjects(v))
  if (v.networkPolicy.enabled) out.push(...networkPolicies(v))
  return out
}
