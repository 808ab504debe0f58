/**
 * The values file of `fleethub deploy render`: types, defaults (the same as deploy/values.yaml)
 * and validation. Pure.
 */
import type { KubeProfile, KubeResources, KubeToleration } from '../../spawner/src/kube-config.js'

export interface Values {
  readonly name: string
  readonly namespace: string
  readonly createNamespace: boolean
  readonly image: { readonly repository: string, readonly tag: string, readonly pullPolicy: string }
  readonly hub: {
    readonly replicas: number
    readonly port: number
    readonly logLevel: string
    readonly adminUsers: readonly string[]
    readonly concurrentSpawnLimit: number
    readonly startTimeout: number
    readonly environment: Readonly<Record<string, string>>
    readonly resources: Readonly<Record<string, unknown>>
  }
  readonly proxy: {
    /**
     * Where the proxies' routes live (issue #15). `api`: in the one proxy's memory, written by the hub
     * through the CHP REST API (default; one replica only). `db`: in Postgres, followed by every proxy.
     */
    readonly routes: 'api' | 'db'
    /** Proxy pods. Default 1; more only with `routes: db`. */
    readonly replicas: number
    /** Proxy processes per pod on the same ports (`fleethub proxy --workers N`). Default 1; more only with `routes: db`. */
    readonly workers: number
    readonly port: number
    readonly apiPort: number
    readonly logLevel: string
    readonly service: { readonly type: 'LoadBalancer' | 'NodePort' | 'ClusterIP', readonly port: number }
    readonly resources: Readonly<Record<string, unknown>>
  }
  readonly secrets: { readonly name: string, readonly create: boolean, readonly databaseUrl: string, readonly proxyAuthToken: string }
  readonly singleuser: {
    readonly image: string
    readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never'
    readonly command: readonly string[]
    readonly port: number
    readonly resources: KubeResources
    readonly nodeSelector: Readonly<Record<string, string>>
    readonly tolerations: readonly KubeToleration[]
    readonly extraEnv: Readonly<Record<string, string>>
    /** Where `/user/<name>/` lands, e.g. '/lab' (z2jh singleuser.defaultUrl); '' = the server's own. */
    readonly defaultUrl: string
    readonly deleteGracePeriodSeconds: number
    readonly apiRateLimit: number
    readonly deleteOrphans: boolean
    readonly storage: { readonly enabled: boolean, readonly size: string, readonly storageClass: string, readonly mountPath: string }
    readonly profiles: readonly KubeProfile[]
  }
  readonly networkPolicy: { readonly enabled: boolean, readonly singleuserExtraEgress: readonly Readonly<Record<string, unknown>>[] }
}

export const DEFAULT_VALUES: Values = {
  name: 'fleethub',
  namespace: 'jupyter',
  createNamespace: false,
  image: { repository: 'ghcr.io/example/fleethub', tag: '0.1.0', pullPolicy: 'IfNotPresent' },
  hub: {
    replicas: 1, port: 8081, logLevel: 'info', adminUsers: [], concurrentSpawnLimit: 100, startTimeout: 300, environment: {},
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
  },
  proxy: {
    routes: 'api', replicas: 1, workers: 1, port: 8000, apiPort: 8001, logLevel: 'info', service: { type: 'LoadBalancer', port: 80 },
    resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
  },
  secrets: { name: 'fleethub-secrets', create: false, databaseUrl: '', proxyAuthToken: '' },
  singleuser: {
    image: 'quay.io/jupyter/base-notebook:latest', imagePullPolicy: 'IfNotPresent', command: ['jupyterhub-singleuser'], port: 8888,
    resources: { cpuRequest: '100m', cpuLimit: '2', memoryRequest: '1Gi', memoryLimit: '2Gi', gpus: 0 },
    nodeSelector: {}, tolerations: [], extraEnv: {}, defaultUrl: '', deleteGracePeriodSeconds: 1, apiRateLimit: 50, deleteOrphans: false,
    storage: { enabled: true, size: '10Gi', storageClass: '', mountPath: '/home/jovyan' },
    profiles: [
      { slug: 'standard', displayName: 'Standard', description: '2 CPUs, 2 GiB', default: true, overrides: {} },
      { slug: 'large', displayName: 'Large', description: '4 CPUs, 8 GiB', overrides: { resources: { cpuRequest: '1', cpuLimit: '4', memoryRequest: '4Gi', memoryLimit: '8Gi' } } },
    ],
  },
  networkPolicy: { enabled: true, singleuserExtraEgress: [] },
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Objects merge key by key; arrays and scalars replace. Unknown keys are reported. */
function merge(def: unknown, given: unknown, path: string, problems: string[]): unknown {
  if (given === undefined || given === null) return def
  if (!isObject(def)) {
    if (Array.isArray(def) && !Array.isArray(given)) problems.push(`${path}: expected a list`)
    else if (typeof def !== 'object' && def !== undefined && typeof given !== typeof def) problems.push(`${path}: expected a ${typeof def}, got ${JSON.stringify(given)}`)
    return given
  }
  if (!isObject(given)) { problems.push(`${path}: expected a mapping`); return def }
  // Free-form maps (labels, env, resources) take whatever keys they are given.
  const freeForm = Object.keys(def).length === 0 || /\.(resources|nodeSelector|extraEnv|environment)$/.test(path)
  const out: Record<string, unknown> = { ...def }
  for (const [k, v] of Object.entries(given)) {
    if (!(k in def) && !freeForm) { problems.push(`${path}.${k}: unknown setting`); continue }
    out[k] = merge(def[k], v, `${path}.${k}`, problems)
  }
  return out
}

/** `proxy.routes`, `replicas`, `workers`: several proxies need the routes in the database. */
function proxyFleetProblems(p: Values['proxy']): string[] {
  const problems: string[] = []
  if (p.routes !== 'api' && p.routes !== 'db') problems.push(`proxy.routes: '${String(p.routes)}' is not api or db`)
  for (const [key, n] of [['proxy.replicas', p.replicas], ['proxy.workers', p.workers]] as const) {
    if (!Number.isInteger(n) || n < 1) problems.push(`${key}: ${String(n)} is not a whole number of at least 1`)
  }
  if (p.workers > 64) problems.push(`proxy.workers: ${p.workers} is more than fleethub proxy --workers accepts (64)`)
  // With `api` each proxy keeps its own table in memory and the hub writes to the one behind the
  // proxy-api Service: another replica (or worker) would answer 404 for running servers.
  if (p.routes === 'api' && p.replicas > 1) {
    problems.push(`proxy.replicas: ${p.replicas} needs proxy.routes: db (with routes: api each proxy replica keeps its own routing table in memory and the hub updates only one of them)`)
  }
  if (p.routes === 'api' && p.workers > 1) {
    problems.push(`proxy.workers: ${p.workers} needs proxy.routes: db (with routes: api each proxy process keeps its own routing table in memory and the hub updates only one of them)`)
  }
  return problems
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** Defaults + the given values, validated; throws one Error listing every problem. */
export function resolveValues(given: unknown): Values {
  const problems: string[] = []
  const v = merge(DEFAULT_VALUES, given ?? {}, 'values', problems) as Values
  if (!DNS_LABEL.test(v.name) || v.name.length > 40) problems.push(`name: '${v.name}' must be a DNS label of at most 40 characters`)
  if (!DNS_LABEL.test(v.namespace) || v.namespace.length > 63) problems.push(`namespace: '${v.namespace}' is not a DNS label`)
  for (const [key, port] of [['hub.port', v.hub.port], ['proxy.port', v.proxy.port], ['proxy.apiPort', v.proxy.apiPort], ['proxy.service.port', v.proxy.service.port], ['singleuser.port', v.singleuser.port]] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${key}: ${String(port)} is not a TCP port`)
  }
  if (v.proxy.port === v.proxy.apiPort) problems.push('proxy.port and proxy.apiPort must differ')
  problems.push(...proxyFleetProblems(v.proxy))
  if (!['LoadBalancer', 'NodePort', 'ClusterIP'].includes(v.proxy.service.type)) problems.push(`proxy.service.type: '${v.proxy.service.type}' is not LoadBalancer, NodePort or ClusterIP`)
  if (v.secrets.create && (v.secrets.databaseUrl === '' || v.secrets.proxyAuthToken === '')) {
    problems.push('secrets.create is true but secrets.databaseUrl or secrets.proxyAuthToken is empty')
  }
  if (v.secrets.create && v.secrets.databaseUrl !== '' && !/^postgres(ql)?:\/\//.test(v.secrets.databaseUrl)) problems.push('secrets.databaseUrl must be a postgres:// URL')
  if (problems.length > 0) throw new Error(`invalid values:\n  ${problems.join('\n  ')}`)
  return v
}
