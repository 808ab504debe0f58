/**
 * The simulated control plane behind the API: a scheduler (nodes with CPU / memory / pod / GPU
 * capacity, first the node with the most free CPU) and a kubelet per node (image pull, container
 * create and start, events as a real kubelet emits them, pod conditions, graceful deletion,
 * evictions). Pod state changes go through the store, so every watcher sees them.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { bytes, cpuMillis } from './quantity.js'
import type { ContainerRuntime, RunningContainer } from './runtime.js'
import { IpAllocator } from './runtime.js'
import type { Store } from './store.js'

/** A range in ms; each draw is uniform in [min, max]. */
export interface Range { readonly min: number, readonly max: number }

export interface NodeOptions {
  readonly count: number
  readonly cpu: string
  readonly memory: string
  readonly pods: number
  readonly gpus: number
}

/** Faults the kubelet honours; mutable at run time through `KubeSim.faults`. */
export interface KubeletFaults {
  /** Fraction (0-1) of image pulls that fail. */
  pullFailureRate: number
  /** Images whose pull always fails. */
  failImages: Set<string>
}

interface NodeState {
  readonly name: string
  readonly cpu: number
  readonly memory: number
  readonly pods: number
  readonly gpus: number
  readonly labels: Record<string, string>
  usedCpu: number
  usedMemory: number
  usedPods: number
  usedGpus: number
  readonly images: Set<string>
}

interface Requests { cpu: number, memory: number, gpus: number }

interface PodRuntimeState {
  readonly key: string
  node?: NodeState
  requests: Requests
  timers: Set<NodeJS.Timeout>
  container?: RunningContainer
  warnedUnschedulable: boolean
  pullFailures: number
  gone: boolean
}

export interface ClusterOptions {
  readonly nodes: NodeOptions
  readonly pullTime: Range
  readonly startTime: Range
  /** How long a deleted pod stays Terminating at most (bounded by its grace period). */
  readonly terminateMs: number
  /** Back-off before a failed pull is reported as ImagePullBackOff and retried. */
  readonly pullBackoffMs: number
  /** Events older than this are deleted (the API server's event TTL). */
  readonly eventTtlMs: number
  readonly runtime: ContainerRuntime
  readonly faults: KubeletFaults
  readonly log: Logger
}

const now = (): string => new Date().toISOString()
const draw = (r: Range): number => r.min + Math.random() * Math.max(0, r.max - r.min)

export class Cluster {
  readonly #store: Store
  readonly #o: ClusterOptions
  readonly #nodes: NodeState[] = []
  readonly #pods = new Map<string, PodRuntimeState>()
  readonly #pending: string[] = []
  // a random start anywhere in the first 40 /16 blocks: two kube-sims on one machine (parallel test
  // files, a test beside a load test) rarely hand out the same pod IP. Starts at whole blocks gave two
  // of them the same first address one time in 40 (EADDRINUSE 127.82.0.1:8888 in a test run).
  readonly #ips = new IpAllocator(64, 63, Math.floor(Math.random() * 40 * 256 * 254))
  readonly #sweeper: NodeJS.Timeout
  #closed = false

  constructor(store: Store, options: ClusterOptions) {
    this.#store = store
    this.#o = options
    const n = options.nodes
    for (let i = 0; i < n.count; i++) {
      const node: NodeState = { name: `sim-node-${i}`, cpu: cpuMillis(n.cpu), memory: bytes(n.memory), pods: n.pods, gpus: n.gpus,
        labels: { 'kubernetes.io/hostname': `sim-node-${i}`, 'kubernetes.io/os': 'linux', 'node.kubernetes.io/instance-type': 'sim' },
        usedCpu: 0, usedMemory: 0, usedPods: 0, usedGpus: 0, images: new Set() }
      this.#nodes.push(node)
      store.create('nodes', nodeObject(node))
    }
    this.#sweeper = setInterval(() => this.#sweepEvents(), Math.min(options.eventTtlMs, 60_000))
    this.#sweeper.unref()
  }

  /** Capacity in use, for stats. */
  usage(): { nodes: number, pods: number, pending: number, running: number } {
    let running = 0
    for (const s of this.#pods.values()) if (s.container !== undefined) running++
    return { nodes: this.#nodes.length, pods: this.#pods.size, pending: this.#pending.length, running }
  }

  /** A pod was just created in the store: queue it for scheduling. */
  podCreated(pod: any): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`
    this.#pods.set(key, { key, requests: podRequests(pod), timers: new Set(), warnedUnschedulable: false, pullFailures: 0, gone: false })
    this.#pending.push(key)
    this.#schedule()
  }

  /**
   * Delete a pod as the API server + kubelet do: unbound or grace 0 -> gone now; else
   * Terminating (deletionTimestamp), Killing event, container stopped, then gone.
   */
  deletePod(pod: any, graceSeconds: number): any {
    const st = this.#pods.get(`${pod.metadata.namespace}/${pod.metadata.name}`)
    if (pod.metadata.deletionTimestamp !== undefined) return pod
    if (st === undefined || st.node === undefined || graceSeconds === 0 || pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
      this.#finish(pod)
      return this.#store.remove('pods', structuredClone(pod))
    }
    const next = structuredClone(pod)
    next.metadata.deletionTimestamp = new Date(Date.now() + graceSeconds * 1000).toISOString()
    next.metadata.deletionGracePeriodSeconds = graceSeconds
    const updated = this.#store.update('pods', next)
    this.#event(updated, 'Normal', 'Killing', `Stopping container ${containerName(pod)}`)
    this.#clearTimers(st)
    const stopped = st.container?.stop() ?? Promise.resolve()
    st.container = undefined
    const delay = Math.min(graceSeconds * 1000, this.#o.terminateMs)
    void stopped.then(() => this.#later(st, delay, () => {
      const cur = this.#store.get('pods', pod.metadata.namespace, pod.metadata.name)
      if (cur === undefined || cur.metadata.uid !== pod.metadata.uid) return
      this.#finish(cur)
      this.#store.remove('pods', structuredClone(cur))
    }, true))
    return updated
  }

  /** Evict a running pod (node pressure): phase Failed, reason Evicted, container stopped. */
  evict(namespace: string, name: string, message = 'The node was low on resource: memory.'): boolean {
    const pod = this.#store.get('pods', namespace, name)
    const st = this.#pods.get(`${namespace}/${name}`)
    if (pod === undefined || st === undefined) return false
    this.#event(pod, 'Warning', 'Evicted', message)
    void st.container?.stop()
    st.container = undefined
    this.#clearTimers(st)
    this.#release(st)
    this.#patchStatus(pod, s => {
      s.phase = 'Failed'; s.reason = 'Evicted'; s.message = message
      setCondition(s, 'Ready', 'False', 'PodFailed'); setCondition(s, 'ContainersReady', 'False', 'PodFailed')
      s.containerStatuses = [{ name: containerName(pod), ready: false, started: false, restartCount: 0, image: image(pod),
        state: { terminated: { exitCode: 137, reason: 'Evicted', finishedAt: now() } } }]
    })
    return true
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweeper)
    const stops: Promise<void>[] = []
    for (const st of this.#pods.values()) {
      this.#clearTimers(st)
      if (st.container !== undefined) stops.push(st.container.stop())
      st.container = undefined
    }
    await Promise.allSettled(stops)
  }

  // --- scheduler ---------------------------------------------------------------------------

  #schedule(): void {
    for (let i = 0; i < this.#pending.length; i++) {
      const key = this.#pending[i]
      const st = this.#pods.get(key)
      const [ns, name] = key.split('/')
      const pod = this.#store.get('pods', ns, name)
      if (st === undefined || pod === undefined || st.gone) { this.#pending.splice(i--, 1); continue }
      const node = this.#fit(pod, st.requests)
      if (typeof node === 'string') {
        if (!st.warnedUnschedulable) {
          st.warnedUnschedulable = true
          this.#event(pod, 'Warning', 'FailedScheduling', node, 'default-scheduler')
          this.#patchStatus(pod, s => setCondition(s, 'PodScheduled', 'False', 'Unschedulable', node))
        }
        continue
      }
      this.#pending.splice(i--, 1)
      this.#bind(pod, st, node)
    }
  }

  /** The node with the most free CPU that fits, or the scheduler's "0/N nodes" message. */
  #fit(pod: any, r: Requests): NodeState | string {
    let best: NodeState | undefined
    const reasons = new Map<string, number>()
    const note = (why: string): void => { reasons.set(why, (reasons.get(why) ?? 0) + 1) }
    const selector: Record<string, string> = pod.spec?.nodeSelector ?? {}
    for (const n of this.#nodes) {
      if (!Object.entries(selector).every(([k, v]) => n.labels[k] === v)) { note("node(s) didn't match Pod's node affinity/selector"); continue }
      if (n.usedPods + 1 > n.pods) { note('Too many pods'); continue }
      if (n.usedCpu + r.cpu > n.cpu) { note('Insufficient cpu'); continue }
      if (n.usedMemory + r.memory > n.memory) { note('Insufficient memory'); continue }
      if (n.usedGpus + r.gpus > n.gpus) { note('Insufficient nvidia.com/gpu'); continue }
      if (best === undefined || n.cpu - n.usedCpu > best.cpu - best.usedCpu) best = n
    }
    if (best !== undefined) return best
    const detail = [...reasons].map(([why, k]) => `${k} ${why}`).join(', ')
    return `0/${this.#nodes.length} nodes are available: ${detail}. preemption: 0/${this.#nodes.length} nodes are available: ${this.#nodes.length} No preemption victims found for incoming pod.`
  }

  #bind(pod: any, st: PodRuntimeState, node: NodeState): void {
    st.node = node
    node.usedCpu += st.requests.cpu; node.usedMemory += st.requests.memory; node.usedGpus += st.requests.gpus; node.usedPods++
    this.#event(pod, 'Normal', 'Scheduled', `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${node.name}`, 'default-scheduler')
    const ip = this.#ips.allocate()
    const bound = this.#patch(pod, p => {
      p.spec.nodeName = node.name
      const s = p.status
      setCondition(s, 'PodScheduled', 'True')
      setCondition(s, 'Initialized', 'True')
      setCondition(s, 'Ready', 'False', 'ContainersNotReady', `containers with unready status: [${containerName(p)}]`)
      setCondition(s, 'ContainersReady', 'False', 'ContainersNotReady', `containers with unready status: [${containerName(p)}]`)
      s.hostIP = '127.0.0.1'
      s.podIP = ip
      s.podIPs = [{ ip }]
      s.startTime = now()
      s.containerStatuses = [waiting(p, 'ContainerCreating')]
    })
    this.#pull(bound, st)
  }

  // --- kubelet ------------------------------------------------------------------------------

  #pull(pod: any, st: PodRuntimeState): void {
    const img = image(pod)
    const node = st.node!
    const cached = node.images.has(img) && pod.spec.containers[0].imagePullPolicy !== 'Always'
    if (cached) {
      this.#event(pod, 'Normal', 'Pulled', `Container image "${img}" already present on machine`)
      this.#create(pod, st)
      return
    }
    this.#event(pod, 'Normal', 'Pulling', `Pulling image "${img}"`)
    const ms = draw(this.#o.pullTime)
    this.#later(st, ms, () => {
      const cur = this.#current(pod)
      if (cur === undefined) return
      const f = this.#o.faults
      if (f.failImages.has(img) || Math.random() < f.pullFailureRate) return this.#pullFailed(cur, st)
      node.images.add(img)
      const secs = (ms / 1000).toFixed(3)
      this.#event(cur, 'Normal', 'Pulled', `Successfully pulled image "${img}" in ${secs}s (${secs}s including waiting). Image size: 1073741824 bytes.`)
      this.#create(cur, st)
    })
  }

  #pullFailed(pod: any, st: PodRuntimeState): void {
    const img = image(pod)
    st.pullFailures++
    this.#event(pod, 'Warning', 'Failed', `Failed to pull image "${img}": rpc error: code = NotFound desc = failed to pull and unpack image "${img}": not found (simulated)`)
    this.#event(pod, 'Warning', 'Failed', 'Error: ErrImagePull')
    const cur = this.#patchStatus(pod, s => { s.containerStatuses = [waiting(pod, 'ErrImagePull', `failed to pull image "${img}"`)] })
    const backoff = this.#o.pullBackoffMs * 2 ** Math.min(st.pullFailures - 1, 5)
    this.#later(st, Math.min(this.#o.pullBackoffMs, backoff), () => {
      const c = this.#current(cur)
      if (c === undefined) return
      this.#event(c, 'Normal', 'BackOff', `Back-off pulling image "${img}"`)
      this.#event(c, 'Warning', 'Failed', 'Error: ImagePullBackOff')
      const c2 = this.#patchStatus(c, s => { s.containerStatuses = [waiting(c, 'ImagePullBackOff', `Back-off pulling image "${img}"`)] })
      this.#later(st, backoff, () => { const c3 = this.#current(c2); if (c3 !== undefined) this.#pull(c3, st) })
    })
  }

  #create(pod: any, st: PodRuntimeState): void {
    this.#event(pod, 'Normal', 'Created', `Created container ${containerName(pod)}`)
    this.#later(st, draw(this.#o.startTime), () => {
      const cur = this.#current(pod)
      if (cur !== undefined) void this.#start(cur, st)
    })
  }

  async #start(pod: any, st: PodRuntimeState): Promise<void> {
    const c = pod.spec.containers[0]
    const env: Record<string, string> = {}
    for (const e of c.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value
    try {
      const container = await this.#o.runtime.start({ namespace: pod.metadata.namespace, podName: pod.metadata.name, image: image(pod),
        ip: pod.status.podIP, port: c.ports?.[0]?.containerPort ?? 8888, env })
      const cur = this.#current(pod)
      if (cur === undefined || st.gone) { await container.stop(); return }
      st.container = container
      this.#event(cur, 'Normal', 'Started', `Started container ${containerName(cur)}`)
      this.#patchStatus(cur, s => {
        s.phase = 'Running'
        setCondition(s, 'ContainersReady', 'True'); setCondition(s, 'Ready', 'True')
        s.containerStatuses = [{ name: containerName(cur), ready: true, started: true, restartCount: 0, image: image(cur),
          imageID: `sim://${image(cur)}`, containerID: `sim://${randomBytes(16).toString('hex')}`, state: { running: { startedAt: now() } } }]
      })
    } catch (err) {
      this.#o.log.warn({ err, pod: pod.metadata.name }, 'container failed to start')
      const cur = this.#current(pod)
      if (cur === undefined) return
      this.#event(cur, 'Warning', 'Failed', `Error: ${(err as Error).message}`)
      this.#release(st)
      this.#patchStatus(cur, s => {
        s.phase = 'Failed'
        s.containerStatuses = [{ name: containerName(cur), ready: false, started: false, restartCount: 0, image: image(cur),
          state: { terminated: { exitCode: 128, reason: 'StartError', message: (err as Error).message, finishedAt: now() } } }]
      })
    }
  }

  // --- helpers ------------------------------------------------------------------------------

  /** The stored pod if it is still the same, live object (not deleted, not recreated). */
  #current(pod: any): any {
    const cur = this.#store.get('pods', pod.metadata.namespace, pod.metadata.name)
    if (cur === undefined || cur.metadata.uid !== pod.metadata.uid || cur.metadata.deletionTimestamp !== undefined) return undefined
    return cur
  }

  #patch(pod: any, f: (p: any) => void): any {
    const cur = this.#store.get('pods', pod.metadata.namespace, pod.metadata.name) ?? pod
    const next = structuredClone(cur)
    next.status ??= {}
    f(next)
    return this.#store.update('pods', next)
  }

  #patchStatus(pod: any, f: (s: any) => void): any {
    return this.#patch(pod, p => f(p.status))
  }

  #later(st: PodRuntimeState, ms: number, f: () => void, evenIfGone = false): void {
    if (this.#closed) return
    const timer = setTimeout(() => {
      st.timers.delete(timer)
      if ((!st.gone || evenIfGone) && !this.#closed) f()
    }, ms)
    st.timers.add(timer)
  }

  #clearTimers(st: PodRuntimeState): void {
    for (const t of st.timers) clearTimeout(t)
    st.timers.clear()
  }

  #release(st: PodRuntimeState): void {
    const n = st.node
    if (n === undefined) return
    n.usedCpu -= st.requests.cpu; n.usedMemory -= st.requests.memory; n.usedGpus -= st.requests.gpus; n.usedPods--
    st.node = undefined
    this.#schedule()
  }

  /** The pod leaves the store: free its node share and stop what runs. */
  #finish(pod: any): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`
    const st = this.#pods.get(key)
    if (st === undefined) return
    st.gone = true
    this.#pods.delete(key)
    this.#clearTimers(st)
    void st.container?.stop()
    st.container = undefined
    this.#release(st)
  }

  #event(pod: any, type: 'Normal' | 'Warning', reason: string, message: string, component = 'kubelet'): void {
    const ts = now()
    this.#store.create('events', {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: `${pod.metadata.name}.${eventSuffix()}`, namespace: pod.metadata.namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, namespace: pod.metadata.namespace, uid: pod.metadata.uid,
        resourceVersion: pod.metadata.resourceVersion, ...(component === 'kubelet' ? { fieldPath: `spec.containers{${containerName(pod)}}` } : {}) },
      reason, message, type, count: 1, firstTimestamp: ts, lastTimestamp: ts, eventTime: null,
      source: component === 'kubelet' ? { component, host: pod.spec?.nodeName } : { component },
      reportingComponent: component, reportingInstance: component === 'kubelet' ? (pod.spec?.nodeName ?? '') : '',
    })
  }

  #sweepEvents(): void {
    const cutoff = Date.now() - this.#o.eventTtlMs
    for (const ev of this.#store.list('events', undefined)) {
      if (Date.parse(ev.lastTimestamp) < cutoff) this.#store.remove('events', structuredClone(ev))
    }
  }
}

let lastEventNs = 0n
/** Like the kubelet's `<pod>.<hex UnixNano>`: names sort in time order (made strictly increasing). */
function eventSuffix(): string {
  let ns = BigInt(Date.now()) * 1_000_000n
  if (ns <= lastEventNs) ns = lastEventNs + 1n
  lastEventNs = ns
  return ns.toString(16)
}

function containerName(pod: any): string { return pod.spec?.containers?.[0]?.name ?? 'container' }
function image(pod: any): string { return pod.spec?.containers?.[0]?.image ?? '' }

function waiting(pod: any, reason: string, message?: string): any {
  return { name: containerName(pod), ready: false, started: false, restartCount: 0, image: image(pod), imageID: '',
    state: { waiting: { reason, ...(message !== undefined ? { message } : {}) } } }
}

function setCondition(status: any, type: string, value: 'True' | 'False', reason?: string, message?: string): void {
  status.conditions ??= []
  const c = { type, status: value, lastProbeTime: null, lastTransitionTime: now(), ...(reason !== undefined ? { reason } : {}), ...(message !== undefined ? { message } : {}) }
  const i = status.conditions.findIndex((x: any) => x.type === type)
  if (i === -1) status.conditions.push(c)
  else status.conditions[i] = c
}

/** Sum of container requests (limits stand in for missing requests, as the API defaults them). */
function podRequests(pod: any): Requests {
  const r: Requests = { cpu: 0, memory: 0, gpus: 0 }
  for (const c of pod.spec?.containers ?? []) {
    const req = c.resources?.requests ?? {}
    const lim = c.resources?.limits ?? {}
    r.cpu += cpuMillis(req.cpu ?? lim.cpu)
    r.memory += bytes(req.memory ?? lim.memory)
    r.gpus += Number(req['nvidia.com/gpu'] ?? lim['nvidia.com/gpu'] ?? 0)
  }
  return r
}

function nodeObject(n: NodeState): any {
  const capacity = { cpu: `${n.cpu}m`, memory: String(n.memory), pods: String(n.pods), 'nvidia.com/gpu': String(n.gpus) }
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: n.name, labels: n.labels },
    status: { capacity, allocatable: capacity, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: n.name }] } }
}
