/**
 * Configuration of the Kubernetes spawner: the types, their defaults and one validating
 * constructor. Pure (no client import), so the hub can build and check it without loading
 * `@kubernetes/client-node`.
 */
import { defaultUrlProblem } from './default-url.js'

/** Compute resources of a user container. Quantities use Kubernetes notation ('500m', '2Gi'). */
export interface KubeResources {
  /** CPU request, e.g. '500m'. Default: none. */
  readonly cpuRequest?: string
  /** CPU limit, e.g. '2'. Default: none. */
  readonly cpuLimit?: string
  /** Memory request, e.g. '1Gi'. Default: none. */
  readonly memoryRequest?: string
  /** Memory limit, e.g. '2Gi'. Default: none. */
  readonly memoryLimit?: string
  /** Number of `nvidia.com/gpu` devices (request = limit). Default: 0 (none). */
  readonly gpus?: number
}

/** A toleration, as in the pod spec. */
export interface KubeToleration {
  readonly key?: string
  readonly operator?: 'Exists' | 'Equal'
  readonly value?: string
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute'
  readonly tolerationSeconds?: number
}

/** Everything a profile may override; the same fields exist at the top level of the config. */
export interface KubePodOptions {
  /** Container image. Default: 'quay.io/jupyter/base-notebook:latest'. */
  readonly image?: string
  /** Image pull policy. Default: 'IfNotPresent'. */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never'
  /** Container command. Default: ['jupyterhub-singleuser']. */
  readonly command?: readonly string[]
  /** Extra container args. Default: []. */
  readonly args?: readonly string[]
  /** Resources. Default: {} (best effort). */
  readonly resources?: KubeResources
  /** Node selector. Default: {}. */
  readonly nodeSelector?: Readonly<Record<string, string>>
  /** Tolerations. Default: []. */
  readonly tolerations?: readonly KubeToleration[]
  /** Affinity, passed through verbatim (pod spec `affinity`). Default: none. */
  readonly affinity?: Readonly<Record<string, unknown>>
  /** Extra environment, applied after the hub's (may override). Default: {}. */
  readonly extraEnv?: Readonly<Record<string, string>>
  /** Extra pod volumes, verbatim. Default: []. */
  readonly extraVolumes?: readonly Readonly<Record<string, unknown>>[]
  /** Extra container volume mounts, verbatim. Default: []. */
  readonly extraVolumeMounts?: readonly Readonly<Record<string, unknown>>[]
  /** Extra pod labels (merged under ours; ours win). Default: {}. */
  readonly extraLabels?: Readonly<Record<string, string>>
  /** Extra pod annotations (merged under ours; ours win). Default: {}. */
  readonly extraAnnotations?: Readonly<Record<string, string>>
  /**
   * Where `/user/<name>/` lands, e.g. '/lab' (Spawner.default_url; `{username}` expands), given to the
   * server as JUPYTERHUB_DEFAULT_URL. Default: the hub's `defaultUrl`, else the server's own (Jupyter: /tree).
   */
  readonly defaultUrl?: string
}

/** A named choice offered on the spawn page (KubeSpawner's `profile_list`). */
export interface KubeProfile {
  /** Stable id sent as `userOptions.profile`; DNS-safe. */
  readonly slug: string
  /** Shown to the user. */
  readonly displayName: string
  /** Shown under the name. Default: ''. */
  readonly description?: string
  /** Picked when the user sends no profile. At most one profile may be the default; else the first. */
  readonly default?: boolean
  /** What this profile overrides (resources are merged field by field). */
  readonly overrides: KubePodOptions
}

/** The user's home volume. */
export interface KubePvcOptions {
  /** Create and mount a per-user PVC. Default: false. */
  readonly enabled: boolean
  /** Name template; `{user}` is the escaped user name. Default: 'claim-{user}'. */
  readonly nameTemplate: string
  /** Requested size. Default: '10Gi'. */
  readonly size: string
  /** Storage class; undefined uses the cluster default. Default: undefined. */
  readonly storageClass?: string
  /** Access modes. Default: ['ReadWriteOnce']. */
  readonly accessModes: readonly string[]
  /** Mount path in the container (the home directory). Default: '/home/jovyan'. */
  readonly mountPath: string
}

export interface KubernetesSpawnerConfig extends KubePodOptions {
  /** Namespace for user pods, PVCs and the watched events. Default: 'default' (in-cluster: the hub's own). */
  readonly namespace: string
  /** Kubeconfig file; undefined = `KUBECONFIG` as given by the hub, else in-cluster. Default: undefined. */
  readonly kubeconfig?: string
  /** Name of this hub, in the `hub.fleethub.io/instance` label; isolates two hubs in one namespace. Default: 'fleethub'. */
  readonly instance: string
  /** Port the single-user server listens on in the pod. Default: 8888. */
  readonly port: number
  /** Pod name template: `{user}`, `{servername}`, `{--servername}` (empty or `--<server>`). Default: 'jupyter-{user}{--servername}'. */
  readonly podNameTemplate: string
  /** Profiles to choose from; empty = no choice. Default: []. */
  readonly profiles: readonly KubeProfile[]
  /** Per-user home PVC. Default: disabled. */
  readonly pvc: KubePvcOptions
  /** Grace period given to a deleted pod, seconds. Default: 1 (as KubeSpawner). */
  readonly deleteGracePeriodSeconds: number
  /** How long start waits for the pod to become ready, ms. Default: 300000 (z2jh startTimeout). */
  readonly startTimeoutMs: number
  /** How long stop waits for the pod to disappear from the watch, ms. Default: 60000. */
  readonly stopTimeoutMs: number
  /** Client-side rate limit for API calls (token bucket), requests/s. Default: 50. */
  readonly apiRateLimit: number
  /** Token bucket burst. Default: 100. */
  readonly apiBurst: number
  /** Give up retrying a failing API call after this long, ms. Default: 30000 (KubeSpawner k8s_api_request_retry_timeout). */
  readonly apiRetryTimeoutMs: number
  /** Delete pods that carry our labels but that the hub does not know (see `findOrphans`). Default: false. */
  readonly deleteOrphans: boolean
  /** Run the single-user server as this uid (pod securityContext). Default: 1000. */
  readonly runAsUser: number
  /** fsGroup of the pod (so the home volume is writable). Default: 100. */
  readonly fsGroup: number
}

export const DEFAULT_IMAGE = 'quay.io/jupyter/base-notebook:latest'

const DEFAULTS: KubernetesSpawnerConfig = {
  namespace: 'default',
  instance: 'fleethub',
  port: 8888,
  podNameTemplate: 'jupyter-{user}{--servername}',
  profiles: [],
  pvc: { enabled: false, nameTemplate: 'claim-{user}', size: '10Gi', accessModes: ['ReadWriteOnce'], mountPath: '/home/jovyan' },
  deleteGracePeriodSeconds: 1,
  startTimeoutMs: 300_000,
  stopTimeoutMs: 60_000,
  apiRateLimit: 50,
  apiBurst: 100,
  apiRetryTimeoutMs: 30_000,
  deleteOrphans: false,
  runAsUser: 1000,
  fsGroup: 100,
  image: DEFAULT_IMAGE,
  imagePullPolicy: 'IfNotPresent',
  command: ['jupyterhub-singleuser'],
}

export type KubernetesSpawnerConfigInput = Partial<Omit<KubernetesSpawnerConfig, 'pvc'>> & { pvc?: Partial<KubePvcOptions> }

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/**
 * Fill in defaults and validate. Throws one Error listing every problem.
 */
export function kubernetesSpawnerConfig(input: KubernetesSpawnerConfigInput = {}): KubernetesSpawnerConfig {
  const config: KubernetesSpawnerConfig = { ...DEFAULTS, ...input, pvc: { ...DEFAULTS.pvc, ...input.pvc } }
  const problems: string[] = []
  if (!DNS_LABEL.test(config.namespace) || config.namespace.length > 63) problems.push(`namespace '${config.namespace}' is not a DNS label`)
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(config.instance)) problems.push(`instance '${config.instance}' is not a valid label value`)
  if (!Number.isInteger(config.port) || config.port < 1 || config.port > 65535) problems.push(`port ${config.port} is not a TCP port`)
  if (!config.podNameTemplate.includes('{user}')) problems.push('podNameTemplate must contain {user}')
  if (config.pvc.enabled && !config.pvc.nameTemplate.includes('{user}')) problems.push('pvc.nameTemplate must contain {user}')
  for (const [key, min] of [['deleteGracePeriodSeconds', 0], ['startTimeoutMs', 1], ['stopTimeoutMs', 1], ['apiRateLimit', 0.001], ['apiBurst', 1], ['apiRetryTimeoutMs', 0]] as const) {
    const v = config[key]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) problems.push(`${key} must be a number >= ${min}`)
  }
  const urlProblem = config.defaultUrl === undefined ? undefined : defaultUrlProblem(config.defaultUrl)
  if (urlProblem) problems.push(`defaultUrl: ${urlProblem}`)
  const slugs = new Set<string>()
  for (const p of config.profiles) {
    if (!DNS_LABEL.test(p.slug)) problems.push(`profile slug '${p.slug}' is not DNS-safe`)
    const profileUrlProblem = p.overrides?.defaultUrl === undefined ? undefined : defaultUrlProblem(p.overrides.defaultUrl)
    if (profileUrlProblem) problems.push(`profile '${p.slug}' defaultUrl: ${profileUrlProblem}`)
    if (slugs.has(p.slug)) problems.push(`profile slug '${p.slug}' is used twice`)
    slugs.add(p.slug)
  }
  if (config.profiles.filter(p => p.default).length > 1) problems.push('more than one profile is marked default')
  if (problems.length > 0) throw new Error(`invalid kubernetes spawner config: ${problems.join('; ')}`)
  return Object.freeze(config)
}
