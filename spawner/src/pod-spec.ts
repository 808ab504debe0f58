/**
 * Pure construction of what the Kubernetes spawner sends to the API: object names, labels and
 * the pod / PVC manifests. No I/O, no client import: everything here is table-tested.
 */
import { createHash } from 'node:crypto'
import type { JsonValue, SpawnSpec } from './spawner.js'
import { SpawnerError } from './spawner.js'
import type { KubePodOptions, KubeProfile, KubeResources, KubernetesSpawnerConfig } from './kube-config.js'
import { DEFAULT_URL_ENV, expandDefaultUrl } from './default-url.js'

export const LABEL_NAME = 'app.kubernetes.io/name'
export const LABEL_COMPONENT = 'app.kubernetes.io/component'
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by'
export const LABEL_INSTANCE = 'hub.fleethub.io/instance'
export const LABEL_USER = 'hub.fleethub.io/username'
export const LABEL_SERVER = 'hub.fleethub.io/servername'
export const ANNOTATION_USER = 'hub.fleethub.io/username'
export const ANNOTATION_SERVER = 'hub.fleethub.io/servername'
export const COMPONENT = 'singleuser-server'
const CONTAINER_NAME = 'notebook'
const MAX_NAME = 63
const HASH_LEN = 8
const MAX_USER_SLUG = 32
const MAX_SERVER_SLUG = 24
const SAFE = /^[a-z0-9]+(-[a-z0-9]+)*$/

function shortHash(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex').slice(0, HASH_LEN)
}

/**
 * KubeSpawner's "safe" slug: a name that is already a DNS label without `--` is kept as is;
 * anything else is lowered, reduced to `[a-z0-9-]`, truncated, and gets `---<hash of the raw
 * name>`. Safe slugs never contain `--` and escaped ones always end in `---<8 hex>`, so two
 * different names never share a slug (short of a hash collision), and `<user>--<server>` stays
 * unambiguous.
 */
export function safeSlug(name: string, maxLength = MAX_USER_SLUG): string {
  if (name.length <= maxLength && SAFE.test(name)) return name
  const body = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')
    .slice(0, maxLength - HASH_LEN - 3).replace(/-+$/, '')
  return `${body === '' ? 'x' : body}---${shortHash(name)}`
}

/** Fill a name template and make it a valid DNS label (<= 63 chars), hashing when truncated. */
function fillName(template: string, user: string, serverName: string): string {
  const userSlug = safeSlug(user, MAX_USER_SLUG)
  const serverSlug = serverName === '' ? '' : safeSlug(serverName, MAX_SERVER_SLUG)
  const full = template
    .replaceAll('{user}', userSlug)
    .replaceAll('{--servername}', serverSlug === '' ? '' : `--${serverSlug}`)
    .replaceAll('{servername}', serverSlug)
  if (full.length <= MAX_NAME) return full
  // Hash the untruncated name: it is already injective, so the short one stays collision-free.
  return `${full.slice(0, MAX_NAME - HASH_LEN - 3).replace(/-+$/, '')}---${shortHash(full)}`
}

export function podName(config: Pick<KubernetesSpawnerConfig, 'podNameTemplate'>, user: string, serverName: string): string {
  return fillName(config.podNameTemplate, user, serverName)
}

/** The user's PVC: one per user (not per server), so it survives server deletion. */
export function pvcName(config: Pick<KubernetesSpawnerConfig, 'pvc'>, user: string): string {
  return fillName(config.pvc.nameTemplate, user, '')
}

/** The labels every pod of this hub carries; also the informer's label selector. */
export function commonLabels(instance: string): Record<string, string> {
  return { [LABEL_NAME]: 'fleethub', [LABEL_COMPONENT]: COMPONENT, [LABEL_INSTANCE]: instance }
}

export function labelSelector(instance: string): string {
  return Object.entries(commonLabels(instance)).map(([k, v]) => `${k}=${v}`).join(',')
}

export function serverLabels(instance: string, user: string, serverName: string): Record<string, string> {
  return {
    ...commonLabels(instance),
    [LABEL_MANAGED_BY]: 'fleethub',
    [LABEL_USER]: safeSlug(user, MAX_NAME),
    [LABEL_SERVER]: serverName === '' ? '' : safeSlug(serverName, MAX_NAME),
  }
}

export function serverAnnotations(user: string, serverName: string): Record<string, string> {
  return { [ANNOTATION_USER]: user, [ANNOTATION_SERVER]: serverName }
}

/** A profile as the hub shows it on the spawn page. */
export interface ProfileChoice {
  readonly slug: string
  readonly displayName: string
  readonly description: string
  readonly default: boolean
}

export function listProfiles(profiles: readonly KubeProfile[]): ProfileChoice[] {
  const def = profiles.find(p => p.default) ?? profiles[0]
  return profiles.map(p => ({ slug: p.slug, displayName: p.displayName, description: p.description ?? '', default: p === def }))
}

/**
 * The pod options for this spawn: the config's, overridden by the chosen profile. No profile
 * asked for -> the default profile (or the first). Unknown profile -> SpawnerError.
 */
export function resolveProfile(config: KubernetesSpawnerConfig, userOptions: Readonly<Record<string, JsonValue>>): { profile?: string, options: KubePodOptions } {
  const base = pickPodOptions(config)
  const asked = userOptions.profile
  if (config.profiles.length === 0) {
    if (asked !== undefined && asked !== '') throw new SpawnerError('SPAWNER_UNKNOWN_PROFILE', `unknown profile '${String(asked)}': this hub offers no profiles`)
    return { options: base }
  }
  if (asked !== undefined && typeof asked !== 'string') throw new SpawnerError('SPAWNER_UNKNOWN_PROFILE', 'profile must be a string')
  const chosen = asked === undefined || asked === ''
    ? (config.profiles.find(p => p.default) ?? config.profiles[0])
    : config.profiles.find(p => p.slug === asked)
  if (chosen === undefined) {
    const known = config.profiles.map(p => p.slug).join(', ')
    throw new SpawnerError('SPAWNER_UNKNOWN_PROFILE', `unknown profile '${asked}'; choose one of: ${known}`)
  }
  const o = chosen.overrides
  return {
    profile: chosen.slug,
    options: {
      ...base, ...o,
      resources: { ...base.resources, ...o.resources },
      nodeSelector: { ...base.nodeSelector, ...o.nodeSelector },
      extraEnv: { ...base.extraEnv, ...o.extraEnv },
      extraLabels: { ...base.extraLabels, ...o.extraLabels },
      extraAnnotations: { ...base.extraAnnotations, ...o.extraAnnotations },
    },
  }
}

function pickPodOptions(c: KubePodOptions): KubePodOptions {
  const { image, imagePullPolicy, command, args, resources, nodeSelector, tolerations, affinity, extraEnv,
    extraVolumes, extraVolumeMounts, extraLabels, extraAnnotations, defaultUrl } = c
  return { image, imagePullPolicy, command, args, resources, nodeSelector, tolerations, affinity, extraEnv,
    extraVolumes, extraVolumeMounts, extraLabels, extraAnnotations, defaultUrl }
}

type Obj = Record<string, unknown>

export function buildResources(r: KubeResources | undefined): { requests?: Record<string, string>, limits?: Record<string, string> } {
  const requests: Record<string, string> = {}
  const limits: Record<string, string> = {}
  if (r?.cpuRequest !== undefined) requests.cpu = r.cpuRequest
  if (r?.memoryRequest !== undefined) requests.memory = r.memoryRequest
  if (r?.cpuLimit !== undefined) limits.cpu = r.cpuLimit
  if (r?.memoryLimit !== undefined) limits.memory = r.memoryLimit
  if (r?.gpus !== undefined && r.gpus > 0) {
    if (!Number.isInteger(r.gpus)) throw new SpawnerError('SPAWNER_BAD_CONFIG', `gpus must be a whole number, got ${r.gpus}`)
    // Extended resources must have request == limit; Kubernetes rejects anything else.
    requests['nvidia.com/gpu'] = String(r.gpus)
    limits['nvidia.com/gpu'] = String(r.gpus)
  }
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  }
}

/**
 * The environment of the container: the hub's, ours, then the profile's extras (last wins). A
 * `defaultUrl` of the spawner config or the chosen profile replaces the hub's JUPYTERHUB_DEFAULT_URL
 * (as a KubeSpawner profile override of `default_url` does).
 */
export function buildEnv(config: Pick<KubernetesSpawnerConfig, 'port'>, spec: Pick<SpawnSpec, 'env' | 'prefix' | 'user'>, options: KubePodOptions): Array<{ name: string, value: string }> {
  const env: Record<string, string> = {
    ...spec.env,
    // Bind on all interfaces of the pod: its IP is only known once it runs.
    JUPYTERHUB_SERVICE_URL: `http://0.0.0.0:${config.port}${spec.prefix}`,
  }
  if (options.defaultUrl !== undefined) env[DEFAULT_URL_ENV] = expandDefaultUrl(options.defaultUrl, spec.user)
  const r = options.resources
  if (r?.cpuLimit !== undefined) env.CPU_LIMIT = r.cpuLimit
  if (r?.cpuRequest !== undefined) env.CPU_GUARANTEE = r.cpuRequest
  if (r?.memoryLimit !== undefined) env.MEM_LIMIT = r.memoryLimit
  if (r?.memoryRequest !== undefined) env.MEM_GUARANTEE = r.memoryRequest
  Object.assign(env, options.extraEnv)
  return Object.entries(env).map(([name, value]) => ({ name, value }))
}

/** The pod for one server. `options` is the resolved profile (see `resolveProfile`). */
export function buildPodManifest(config: KubernetesSpawnerConfig, spec: SpawnSpec, options: KubePodOptions, profile?: string): Obj {
  const name = podName(config, spec.user, spec.serverName)
  const labels = { ...options.extraLabels, ...serverLabels(config.instance, spec.user, spec.serverName) }
  const annotations: Record<string, string> = { ...options.extraAnnotations, ...serverAnnotations(spec.user, spec.serverName) }
  if (profile !== undefined) annotations['hub.fleethub.io/profile'] = profile
  const volumes: Obj[] = [...(options.extraVolumes ?? [])]
  const mounts: Obj[] = [...(options.extraVolumeMounts ?? [])]
  if (config.pvc.enabled) {
    volumes.unshift({ name: 'home', persistentVolumeClaim: { claimName: pvcName(config, spec.user) } })
    mounts.unshift({ name: 'home', mountPath: config.pvc.mountPath })
  }
  const container: Obj = {
    name: CONTAINER_NAME,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy ?? 'IfNotPresent',
    ...(options.command !== undefined ? { command: [...options.command] } : {}),
    ...(options.args !== undefined && options.args.length > 0 ? { args: [...options.args] } : {}),
    ports: [{ name: 'notebook-port', containerPort: config.port, protocol: 'TCP' }],
    env: buildEnv(config, spec, options),
    resources: buildResources(options.resources),
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
  }
  const podSpec: Obj = {
    restartPolicy: 'OnFailure',
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: { runAsNonRoot: true, runAsUser: config.runAsUser, fsGroup: config.fsGroup, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [container],
    ...(volumes.length > 0 ? { volumes } : {}),
    ...(options.nodeSelector !== undefined && Object.keys(options.nodeSelector).length > 0 ? { nodeSelector: { ...options.nodeSelector } } : {}),
    ...(options.tolerations !== undefined && options.tolerations.length > 0 ? { tolerations: options.tolerations.map(t => ({ ...t })) } : {}),
    ...(options.affinity !== undefined ? { affinity: options.affinity } : {}),
  }
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: config.namespace, labels, annotations }, spec: podSpec }
}

export function buildPvcManifest(config: KubernetesSpawnerConfig, user: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: pvcName(config, user),
      namespace: config.namespace,
      labels: { ...serverLabels(config.instance, user, ''), [LABEL_COMPONENT]: 'singleuser-storage' },
      annotations: { [ANNOTATION_USER]: user },
    },
    spec: {
      accessModes: [...config.pvc.accessModes],
      resources: { requests: { storage: config.pvc.size } },
      ...(config.pvc.storageClass !== undefined ? { storageClassName: config.pvc.storageClass } : {}),
    },
  }
}

/** Does this existing pod (e.g. from a 409 on create) belong to exactly this server of this hub? */
export function podBelongsTo(pod: { metadata?: { labels?: Record<string, string>, annotations?: Record<string, string> } }, instance: string, user: string, serverName: string): boolean {
  const labels = pod.metadata?.labels ?? {}
  const ann = pod.metadata?.annotations ?? {}
  const want = serverLabels(instance, user, serverName)
  return Object.entries(want).every(([k, v]) => labels[k] === v) &&
    ann[ANNOTATION_USER] === user && ann[ANNOTATION_SERVER] === serverName
}
