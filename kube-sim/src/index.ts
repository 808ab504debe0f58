/**
 * kube-sim: a simulated Kubernetes API server with a scheduler and kubelet, good enough for
 * `@kubernetes/client-node` (and plausibly for kubectl). A measuring instrument, like kwok: the
 * real spawner and client run unchanged, only the cluster is simulated. Test infrastructure for the
 * spawner, the hub, deploy and the load tests, hence a top-level folder of its own (README.md).
 */
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import type { Logger } from 'pino'
import { KubeApi } from './api.js'
import type { ApiFaults, RecordedRequest } from './api.js'
import { Cluster } from './cluster.js'
import type { KubeletFaults, NodeOptions, Range } from './cluster.js'
import { httpRuntime, noneRuntime } from './runtime.js'
import type { ContainerRuntime } from './runtime.js'
import { Store } from './store.js'

export type { RecordedRequest } from './api.js'
export type { ContainerRuntime, ContainerSpec, RunningContainer } from './runtime.js'
export { httpRuntime, noneRuntime, singleUserRuntime } from './runtime.js'
export { podHostsFor, podHostsRuntime } from './pod-hosts.js'
export type { PodHostsOptions } from './pod-hosts.js'
export type { Range } from './cluster.js'

export interface KubeSimOptions {
  /** Bind address. Default: '127.0.0.1'. */
  readonly host?: string
  /** Port; 0 = any free port. Default: 0. */
  readonly port?: number
  /** Namespaces that exist at start. Default: ['default']. */
  readonly namespaces?: readonly string[]
  /** Simulated nodes. Default: 10 nodes of 32 CPU, 128Gi, 110 pods, 0 GPUs. */
  readonly nodes?: Partial<NodeOptions>
  /** Image pull time, ms. Default: 0-0 (instant). */
  readonly pullTime?: Range
  /** Container start time (Created -> Started), ms. Default: 0-0. */
  readonly startTime?: Range
  /** Max time a deleted pod stays Terminating, ms (bounded by its grace period). Default: 100. */
  readonly terminateMs?: number
  /** Back-off after a failed pull before ImagePullBackOff, ms. Default: 500. */
  readonly pullBackoffMs?: number
  /** Event time to live, ms. Default: 3600000 (1 h, as the API server). */
  readonly eventTtlMs?: number
  /** What runs in a pod. Default: 'http' (a tiny server on the pod IP). A runtime with close() is closed by kube-sim's close(). */
  readonly runtime?: ContainerRuntime | 'http' | 'none'
  /** Watch history window in changes; a watch resuming from before it gets 410. Default: 20000. */
  readonly historySize?: number
  /** BOOKMARK interval, ms. Default: 60000. */
  readonly bookmarkIntervalMs?: number
  /** Server-side watch timeout when the client sends none, ms. Default: 300000-600000 (random, like the real one). */
  readonly watchTimeoutMs?: number
  /** Keep at most this many request records. Default: 1000000. */
  readonly maxRecorded?: number
  /** Initial faults. Default: none. */
  readonly faults?: Partial<Omit<SimFaults, 'failImages'>> & { failImages?: Iterable<string> }
  readonly logger?: Logger
}

/** Everything injectable, mutable while running. */
export interface SimFaults extends ApiFaults, KubeletFaults {}

export interface KubeSim {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** A kubeconfig object pointing at the sim (plain HTTP, no auth). */
  kubeconfig(namespace?: string): Record<string, unknown>
  /** Write that kubeconfig (JSON, which is YAML) to `file`. */
  writeKubeconfig(file: string, namespace?: string): Promise<void>
  stats(): Record<string, unknown>
  /** Every API request so far (copy). */
  requests(): RecordedRequest[]
  clearRequests(): void
  readonly faults: SimFaults & {
    /** Close every open watch stream; returns how many. */
    dropWatches(): number
    /** Evict a pod (node pressure); false if no such pod. */
    evict(namespace: string, name: string, message?: string): boolean
  }
  close(): Promise<void>
}

export async function createKubeSim(options: KubeSimOptions = {}): Promise<KubeSim> {
  const log = options.logger ?? pino({ level: 'silent' })
  const store = new Store(options.historySize ?? 20_000)
  const faults: SimFaults = {
    latencyMs: 0, rateLimit: 0, retryAfterSeconds: 1, failNext: { count: 0, status: 500 }, pullFailureRate: 0,
    ...options.faults,
    failImages: new Set(options.faults?.failImages ?? []),
  }
  const runtime = options.runtime === 'none' ? noneRuntime : options.runtime === 'http' || options.runtime === undefined ? httpRuntime : options.runtime
  const cluster = new Cluster(store, {
    nodes: { count: 10, cpu: '32', memory: '128Gi', pods: 110, gpus: 0, ...options.nodes },
    pullTime: options.pullTime ?? { min: 0, max: 0 },
    startTime: options.startTime ?? { min: 0, max: 0 },
    terminateMs: options.terminateMs ?? 100,
    pullBackoffMs: options.pullBackoffMs ?? 500,
    eventTtlMs: options.eventTtlMs ?? 3_600_000,
    runtime, faults, log,
  })
  for (const ns of options.namespaces ?? ['default']) {
    store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } })
  }
  let url = ''
  const api = new KubeApi({
    store, cluster, faults,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    watchTimeoutMs: options.watchTimeoutMs ?? 300_000 + Math.floor(Math.random() * 300_000),
    maxRecorded: options.maxRecorded ?? 1_000_000,
    serverAddress: () => url.replace(/^http:\/\//, ''),
    runtimeStats: () => runtime.stats?.(),
  })
  const server = createServer(api.handle)
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const addr = server.address() as AddressInfo
  url = `http://${addr.address}:${addr.port}`
  log.info({ url, runtime: runtime.name }, 'kube-sim listening')

  const kubeconfig = (namespace = 'default'): Record<string, unknown> => ({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'kube-sim', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'kube-sim', user: {} }],
    contexts: [{ name: 'kube-sim', context: { cluster: 'kube-sim', user: 'kube-sim', namespace } }],
    'current-context': 'kube-sim',
  })
  const allFaults = Object.assign(faults, {
    dropWatches: () => api.dropWatches(),
    evict: (namespace: string, name: string, message?: string) => cluster.evict(namespace, name, message),
  })
  return {
    url,
    kubeconfig,
    writeKubeconfig: async (file, namespace) => { await writeFile(file, JSON.stringify(kubeconfig(namespace), null, 2) + '\n', { mode: 0o600 }) },
    stats: () => api.stats(),
    requests: () => api.requests(),
    clearRequests: () => api.clearRequests(),
    faults: allFaults,
    close: async () => {
      api.dropWatches()
      await cluster.close()
      await runtime.close?.()
      await new Promise<void>(resolve => { server.close(() => resolve()); server.closeAllConnections() })
    },
  }
}
