/**
 * The Kubernetes spawner: a pod per server (plus an optional per-user PVC), watched through ONE
 * pod informer and ONE event stream per spawner (per namespace), never polled per user.
 *
 * Why it is built this way (spec/anchors.md §3, §9.7):
 * - poll() reads the informer cache only, and waits for the first LIST before answering: a poll
 *   before that would report running servers as gone after a hub restart (kubespawner #786).
 * - start waits on informer callbacks, not on API calls; progress comes from the streamed events.
 * - every API call goes through a shared token bucket and honours 429 Retry-After, so a class
 *   start does not exceed a managed control plane's rate cap.
 * - the watches are restarted with backoff after errors (the client's ListWatch does not
 *   restart itself on errors other than 410), and re-list on 410 Gone.
 *
 * The parts: kube-informer.ts (pods), kube-event-stream.ts (events), kube-restarter.ts (their
 * shared restart with backoff), kube-start-watcher.ts (one start's progress and outcome).
 * This is the only file that loads `@kubernetes/client-node` at runtime (the others import its
 * types only), and it is loaded only when a hub is configured for Kubernetes (kube-load.ts).
 */
import { setMaxListeners } from 'node:events'
import { CoreV1Api, KubeConfig, ListWatch, Watch } from '@kubernetes/client-node'
import type { CoreV1Event, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { kubernetesSpawnerConfig } from './kube-config.js'
import type { KubernetesSpawnerConfig, KubernetesSpawnerConfigInput } from './kube-config.js'
import { EventStream } from './kube-event-stream.js'
import { Informer } from './kube-informer.js'
import { describeApiError, sleep, statusOf, TokenBucket, withRetry } from './kube-retry.js'
import { slimPod } from './kube-slim.js'
import { StartWatcher } from './kube-start-watcher.js'
import {
  ANNOTATION_SERVER, ANNOTATION_USER, buildPodManifest, buildPvcManifest, labelSelector, listProfiles, podBelongsTo, podName, resolveProfile,
} from './pod-spec.js'
import type { ProfileChoice } from './pod-spec.js'
import { SpawnerError } from './spawner.js'
import type { PollResult, Spawner, SpawnerState, SpawnSpec, StartOptions, StartResult } from './spawner.js'
import { linkSignals } from './link-signals.js'

export type { KubernetesSpawnerConfig, KubernetesSpawnerConfigInput, KubeProfile, KubePodOptions, KubeResources, KubePvcOptions } from './kube-config.js'
export type { ProfileChoice } from './pod-spec.js'

export interface KubernetesSpawnerDeps {
  readonly log: Logger
  /** The hub's environment, for `KUBECONFIG` (only main.ts reads process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** A kubeconfig object to use instead of a file or in-cluster (tests, kube-sim). */
  readonly kubeconfigObject?: Record<string, unknown>
}

/** A pod of this hub that the hub has no server for. */
export interface OrphanPod {
  readonly podName: string
  readonly user: string
  readonly serverName: string
  readonly phase: string
  /** True when `deleteOrphans` is on and the pod was deleted. */
  readonly deleted: boolean
}

export interface KubernetesSpawner extends Spawner {
  readonly kind: 'kubernetes'
  readonly config: KubernetesSpawnerConfig
  /** Resolves after both informers' first LIST (poll and start wait for it themselves). */
  ready(): Promise<void>
  /** The profiles for the spawn page. */
  profiles(): ProfileChoice[]
  /** Pods with our labels whose (user, server) is not in `known`; deleted if `deleteOrphans`. */
  findOrphans(known: ReadonlyArray<{ user: string, serverName: string }>): Promise<OrphanPod[]>
}

const LIST_PAGE = 500

type PodListener = (pod: V1Pod | undefined, deleted: boolean) => void
type EventListener = (event: CoreV1Event) => void

/** Build the spawner and start its informers. `config` may be partial: defaults are filled in. */
export function createKubernetesSpawner(config: KubernetesSpawnerConfigInput | KubernetesSpawnerConfig, deps: KubernetesSpawnerDeps): KubernetesSpawner {
  return new KubeSpawner(kubernetesSpawnerConfig(config as KubernetesSpawnerConfigInput), deps)
}

function loadKubeConfig(config: KubernetesSpawnerConfig, deps: KubernetesSpawnerDeps): KubeConfig {
  const kc = new KubeConfig()
  if (deps.kubeconfigObject !== undefined) kc.loadFromString(JSON.stringify(deps.kubeconfigObject))
  else if (config.kubeconfig !== undefined) kc.loadFromFile(config.kubeconfig)
  else if (deps.env?.KUBECONFIG !== undefined && deps.env.KUBECONFIG !== '') kc.loadFromFile(deps.env.KUBECONFIG.split(':')[0])
  else kc.loadFromCluster()
  return kc
}

/** A Watch that hands the informer slim pods (see kube-slim.ts); ERROR and BOOKMARK pass as they are. */
class SlimWatch extends Watch {
  override watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    return super.watch(path, queryParams, (phase, obj, raw) => {
      callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? slimPod(obj) : obj, raw)
    }, done)
  }
}

class KubeSpawner implements KubernetesSpawner {
  readonly kind = 'kubernetes' as const
  readonly config: KubernetesSpawnerConfig
  readonly #log: Logger
  readonly #core: CoreV1Api
  readonly #bucket: TokenBucket
  readonly #pods: Informer<V1Pod>
  readonly #events: EventStream
  readonly #podListeners = new Map<string, Set<PodListener>>()
  readonly #eventListeners = new Map<string, Set<EventListener>>()
  readonly #closing = new AbortController()

  constructor(config: KubernetesSpawnerConfig, deps: KubernetesSpawnerDeps) {
    this.config = config
    // every start in flight listens on it (linkSignals, removed when the start ends): a class start
    // has a hundred at once, which is no leak, so Node's warning past 10 listeners is off here
    setMaxListeners(0, this.#closing.signal)
    this.#log = deps.log.child({ component: 'kubernetes-spawner', namespace: config.namespace })
    const kc = loadKubeConfig(config, deps)
    this.#core = kc.makeApiClient(CoreV1Api)
    this.#bucket = new TokenBucket(config.apiRateLimit, config.apiBurst)
    const ns = config.namespace
    const selector = labelSelector(config.instance)
    // The cache keeps only what poll/start/stop read (see kube-slim.ts): a 10k-pod namespace
    // would otherwise hold every pod's full spec and env in the hub's heap.
    this.#pods = new Informer(new ListWatch<V1Pod>(`/api/v1/namespaces/${ns}/pods`, new SlimWatch(kc),
      () => this.#listPods(ns, selector), false, selector), this.#log.child({ informer: 'pods' }))
    // Events are not cached at all: only starts in progress want them, and they register before
    // they create their pod, so a live stream is enough (and 10k pods mean 50k events).
    this.#events = new EventStream(new Watch(kc), `/api/v1/namespaces/${ns}/events`, 'involvedObject.kind=Pod',
      async () => (await this.#api(() => this.#core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.kind=Pod', limit: 1 }))).metadata?.resourceVersion ?? '',
      ev => {
        const name = ev.involvedObject?.name
        if (name !== undefined) for (const f of this.#eventListeners.get(name) ?? []) f(ev)
      }, this.#log.child({ informer: 'events' }))
    const onPod = (deleted: boolean) => (pod: V1Pod): void => this.#notifyPod(pod, deleted)
    this.#pods.lw.on('add', onPod(false)); this.#pods.lw.on('update', onPod(false)); this.#pods.lw.on('delete', onPod(true))
    this.#pods.start()
    this.#events.start()
  }

  ready(): Promise<void> {
    return Promise.all([this.#pods.ready, this.#events.ready]).then(() => undefined)
  }

  profiles(): ProfileChoice[] {
    return listProfiles(this.config.profiles)
  }

  async start(spec: SpawnSpec, options: StartOptions): Promise<StartResult> {
    // not AbortSignal.any: it leaks into #closing's dependants on Node 20 (link-signals.ts)
    const link = linkSignals([options.signal, this.#closing.signal])
    try {
      return await this.#start(spec, options, link.signal)
    } finally {
      link.unlink()
    }
  }

  async #start(spec: SpawnSpec, options: StartOptions, signal: AbortSignal): Promise<StartResult> {
    const { profile, options: podOptions } = resolveProfile(this.config, spec.userOptions)
    const manifest = buildPodManifest(this.config, spec, podOptions, profile) as unknown as V1Pod
    const name = manifest.metadata!.name!
    const log = this.#log.child({ user: spec.user, serverName: spec.serverName, pod: name })
    await abortable(this.ready(), signal)
    options.saveState?.({ podName: name, namespace: this.config.namespace })
    const watcher = new StartWatcher(name, this.config.port, options.progress)
    const offPod = this.#onPod(name, (pod, deleted) => watcher.pod(pod, deleted))
    const offEvent = this.#onEvent(name, ev => watcher.event(ev))
    const timer = setTimeout(() => watcher.timeout(this.config.startTimeoutMs), this.config.startTimeoutMs)
    const onAbort = (): void => watcher.abort()
    signal.addEventListener('abort', onAbort, { once: true })
    let uid: string | undefined
    try {
      if (this.config.pvc.enabled) await this.#ensurePvc(spec.user, signal, log)
      options.progress({ progress: 5, message: `Creating pod ${name}` })
      const pod = await this.#createPod(manifest, spec, signal, log)
      uid = pod.metadata?.uid
      watcher.created(pod)
      const live = this.#pods.lw.get(name, this.config.namespace)
      if (live !== undefined) watcher.pod(live, false)
      const url = await watcher.done
      log.info({ url }, 'pod ready')
      return { url, state: { podName: name, namespace: this.config.namespace, ...(uid !== undefined ? { uid } : {}) } }
    } catch (err) {
      const failure = err instanceof SpawnerError ? err
        : signal.aborted ? new SpawnerError('SPAWNER_START_CANCELLED', `start of ${name} was cancelled`, { cause: err })
          : new SpawnerError('SPAWNER_KUBE_API', `could not start pod ${name}: ${describeApiError(err)}`, { cause: err })
      log.warn({ code: failure.code, err: failure.message }, 'start failed; deleting the pod')
      // Nothing may be left running after a failed start.
      await this.#deletePod(name, uid, 0).catch(e => log.warn({ err: describeApiError(e) }, 'could not delete the failed pod'))
      throw failure
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      offPod(); offEvent()
    }
  }

  async stop(state: SpawnerState, spec: Pick<SpawnSpec, 'user' | 'serverName'>): Promise<void> {
    const name = typeof state.podName === 'string' ? state.podName : podName(this.config, spec.user, spec.serverName)
    const uid = typeof state.uid === 'string' ? state.uid : undefined
    await this.#firstList()
    let resolveGone!: () => void
    const gone = new Promise<void>(resolve => { resolveGone = resolve })
    const isGone = (pod: V1Pod | undefined): boolean => pod === undefined || (uid !== undefined && pod.metadata?.uid !== uid)
    const off = this.#onPod(name, (pod, deleted) => { if (deleted || isGone(pod)) resolveGone() })
    try {
      const found = await this.#deletePod(name, uid, this.config.deleteGracePeriodSeconds)
      if (!found || isGone(this.#pods.lw.get(name, this.config.namespace))) return
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SpawnerError('SPAWNER_STOP_TIMEOUT', `pod ${name} was still there ${this.config.stopTimeoutMs / 1000}s after deletion`)), this.config.stopTimeoutMs)
      })
      try { await Promise.race([gone, timeout]) } finally { clearTimeout(timer) }
    } finally {
      off()
    }
  }

  async poll(state: SpawnerState, spec: Pick<SpawnSpec, 'user' | 'serverName'>): Promise<PollResult> {
    // The KubeSpawner orphaning bug: answering from an empty cache before the first LIST. If
    // the cluster cannot be listed at all, reject rather than claim the server is gone.
    await this.#firstList()
    const name = typeof state.podName === 'string' ? state.podName : podName(this.config, spec.user, spec.serverName)
    const pod = this.#pods.lw.get(name, this.config.namespace)
    if (pod === undefined) return { running: false, reason: 'pod not found' }
    if (typeof state.uid === 'string' && pod.metadata?.uid !== state.uid) return { running: false, reason: 'pod was replaced' }
    if (pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null) return { running: false, reason: 'pod is terminating' }
    const phase = pod.status?.phase
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated
    if (phase === 'Failed' || phase === 'Succeeded' || terminated !== undefined) {
      return { running: false, reason: pod.status?.reason ?? terminated?.reason ?? `pod ${phase}`, exitCode: terminated?.exitCode ?? null }
    }
    return { running: true }
  }

  async findOrphans(known: ReadonlyArray<{ user: string, serverName: string }>): Promise<OrphanPod[]> {
    await this.#firstList()
    const keys = new Set(known.map(k => JSON.stringify([k.user, k.serverName])))
    const out: OrphanPod[] = []
    for (const pod of this.#pods.lw.list(this.config.namespace)) {
      const ann = pod.metadata?.annotations ?? {}
      const user = ann[ANNOTATION_USER]
      const serverName = ann[ANNOTATION_SERVER] ?? ''
      if (user === undefined || keys.has(JSON.stringify([user, serverName])) || pod.metadata?.deletionTimestamp) continue
      let deleted = false
      if (this.config.deleteOrphans) {
        await this.#deletePod(pod.metadata!.name!, pod.metadata?.uid, this.config.deleteGracePeriodSeconds)
        deleted = true
      }
      out.push({ podName: pod.metadata!.name!, user, serverName, phase: pod.status?.phase ?? 'Unknown', deleted })
    }
    if (out.length > 0) this.#log.warn({ orphans: out.length, deleted: this.config.deleteOrphans }, 'pods without a server row')
    return out
  }

  async close(): Promise<void> {
    this.#closing.abort(new Error('spawner closed'))
    await Promise.all([this.#pods.stop(), this.#events.stop()])
  }

  async #firstList(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SpawnerError('SPAWNER_KUBE_UNAVAILABLE',
        `could not list pods in namespace ${this.config.namespace} within ${this.config.apiRetryTimeoutMs / 1000}s`)), this.config.apiRetryTimeoutMs)
    })
    try { await Promise.race([this.#pods.ready, limit]) } finally { clearTimeout(timer) }
  }

  /**
   * The informer's LIST, in pages of LIST_PAGE slimmed as they arrive, so that the full objects
   * of a 10k-pod namespace never sit in memory at once (and the API server serves small pages).
   */
  async #listPods(namespace: string, selector: string): Promise<{ metadata: { resourceVersion?: string }, items: V1Pod[] }> {
    const items: V1Pod[] = []
    let cont: string | undefined
    let resourceVersion: string | undefined
    for (let page = 0; page < 100_000; page++) {
      const list = await this.#api(() => this.#core.listNamespacedPod({ namespace, labelSelector: selector, limit: LIST_PAGE, ...(cont !== undefined ? { _continue: cont } : {}) }))
      for (const p of list.items) items.push(slimPod(p) as V1Pod)
      resourceVersion = list.metadata?.resourceVersion
      cont = list.metadata?._continue
      if (cont === undefined || cont === '') break
    }
    return { metadata: { resourceVersion }, items }
  }

  // --- API calls -----------------------------------------------------------------------------

  #api<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry(this.#bucket, call, {
      timeoutMs: this.config.apiRetryTimeoutMs,
      signal: signal ?? this.#closing.signal,
      onRetry: info => this.#log.info(info, 'kubernetes API call will be retried'),
    })
  }

  async #ensurePvc(user: string, signal: AbortSignal, log: Logger): Promise<void> {
    const body = buildPvcManifest(this.config, user) as unknown as V1PersistentVolumeClaim
    try {
      await this.#api(() => this.#core.createNamespacedPersistentVolumeClaim({ namespace: this.config.namespace, body }), signal)
      log.info({ pvc: body.metadata!.name }, 'PVC created')
    } catch (err) {
      // The claim outlives servers on purpose: an existing one is the user's home, reused.
      if (statusOf(err) !== 409) throw err
    }
  }

  /** Create the pod; on 409 adopt it if it is this server's and alive, else replace it. */
  async #createPod(manifest: V1Pod, spec: SpawnSpec, signal: AbortSignal, log: Logger): Promise<V1Pod> {
    const name = manifest.metadata!.name!
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await this.#api(() => this.#core.createNamespacedPod({ namespace: this.config.namespace, body: manifest }), signal)
      } catch (err) {
        if (statusOf(err) !== 409) throw err
      }
      const existing = this.#pods.lw.get(name, this.config.namespace) ??
        await this.#api(() => this.#core.readNamespacedPod({ name, namespace: this.config.namespace }), signal).catch(e => { if (statusOf(e) === 404) return undefined; throw e })
      if (existing === undefined) continue
      const terminating = existing.metadata?.deletionTimestamp !== undefined && existing.metadata.deletionTimestamp !== null
      if (!terminating && podBelongsTo(existing as never, this.config.instance, spec.user, spec.serverName)) {
        log.info('pod already exists for this server; adopting it')
        return existing
      }
      log.warn({ terminating }, 'a pod with this name exists and is not ours to adopt; replacing it')
      await this.#deletePod(name, existing.metadata?.uid, 0)
      await this.#waitGone(name, existing.metadata?.uid, signal)
    }
    throw new SpawnerError('SPAWNER_POD_CONFLICT', `pod ${name} kept coming back; another process may be creating it`)
  }

  /**
   * Delete (false = nothing of ours to delete). With a uid, the API deletes only that pod: a
   * stop for an old server must not remove a newer pod that reuses the name (409 = not ours).
   */
  async #deletePod(name: string, uid: string | undefined, graceSeconds: number): Promise<boolean> {
    try {
      await this.#api(() => this.#core.deleteNamespacedPod({ name, namespace: this.config.namespace, gracePeriodSeconds: graceSeconds,
        ...(uid !== undefined ? { body: { preconditions: { uid } } } : {}) }))
      return true
    } catch (err) {
      if (statusOf(err) === 404 || (uid !== undefined && statusOf(err) === 409)) return false
      throw err
    }
  }

  async #waitGone(name: string, uid: string | undefined, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.config.stopTimeoutMs
    for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
      const p = this.#pods.lw.get(name, this.config.namespace)
      if (p === undefined || (uid !== undefined && p.metadata?.uid !== uid)) return
      await new Promise<void>(resolve => {
        const off = this.#onPod(name, () => { off(); resolve() })
        void sleep(200, signal).then(() => { off(); resolve() }, () => { off(); resolve() })
      })
      signal.throwIfAborted()
    }
    throw new SpawnerError('SPAWNER_POD_CONFLICT', `pod ${name} did not go away in time`)
  }

  // --- informer fan-out to the starts/stops waiting on one pod ------------------------------

  #onPod(name: string, f: PodListener): () => void {
    return addListener(this.#podListeners, name, f)
  }

  #onEvent(name: string, f: EventListener): () => void {
    return addListener(this.#eventListeners, name, f)
  }

  #notifyPod(pod: V1Pod, deleted: boolean): void {
    const name = pod.metadata?.name
    if (name === undefined) return
    for (const f of this.#podListeners.get(name) ?? []) f(pod, deleted)
  }
}

function addListener<F>(map: Map<string, Set<F>>, key: string, f: F): () => void {
  let set = map.get(key)
  if (set === undefined) { set = new Set(); map.set(key, set) }
  set.add(f)
  return () => {
    const s = map.get(key)
    s?.delete(f)
    if (s !== undefined && s.size === 0) map.delete(key)
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(v => { signal.removeEventListener('abort', onAbort); resolve(v) }, e => { signal.removeEventListener('abort', onAbort); reject(e) })
  })
}
