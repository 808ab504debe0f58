/** `fleethub kube-sim` flags -> one frozen config (pure). */
import { parseArgs } from 'node:util'
import type { Range } from './cluster.js'

/** `--pod-hosts` above this is a typo, not a plan (each host is a Node process). */
const MAX_POD_HOSTS = 64

export interface KubeSimConfig {
  readonly help: boolean
  readonly host: string
  readonly port: number
  readonly writeKubeconfig?: string
  readonly namespaces: readonly string[]
  readonly nodes: number
  readonly nodeCpu: string
  readonly nodeMemory: string
  readonly nodePods: number
  readonly nodeGpus: number
  readonly pullTime: Range
  readonly startTime: Range
  readonly rateLimit: number
  readonly latencyMs: number
  readonly pullFailureRate: number
  readonly failImages: readonly string[]
  readonly runtime: 'http' | 'none' | 'singleuser'
  /** Child processes the containers run in (pod-hosts.ts), or 'auto' (enough for the cluster's pods); 0 = in kube-sim itself. Default 0. */
  readonly podHosts: number | 'auto'
  readonly historySize: number
  readonly logLevel: string
}

export const KUBE_SIM_USAGE = `usage: fleethub kube-sim [options]

A simulated Kubernetes API server + scheduler + kubelet on loopback (every report using it must say
the cluster was simulated). Pods run as virtual servers on their own 127.x.y.z address.

  --host ADDR              bind address (default 127.0.0.1)
  --port P                 API port (default 0 = any free port; printed on start)
  --write-kubeconfig FILE  write a kubeconfig for the sim to FILE (JSON)
  --namespace NS           namespace that exists at start; repeatable (default: default)
  --nodes N                simulated nodes (default 10)
  --node-cpu Q             CPU per node (default 32)
  --node-memory Q          memory per node (default 128Gi)
  --node-pods N            max pods per node (default 110)
  --node-gpus N            nvidia.com/gpu per node (default 0)
  --pull-time D[-D]        image pull time, uniform range, e.g. 5-15s, 500ms, 0 (default 0)
  --start-time D[-D]       container start time (default 0)
  --rate-limit N           answer 429 + Retry-After above N requests/s (default 0 = off; 200 models GKE)
  --latency D              added to every API request (default 0)
  --pull-failure-rate F    fraction of pulls that fail with ErrImagePull (default 0)
  --fail-image IMAGE       pulls of IMAGE always fail; repeatable
  --runtime R              http (tiny server per pod, default) | singleuser (the built-in server;
                           needs the hub) | none (nothing listens)
  --pod-hosts N|auto       run the containers in N child processes, each with its own open-file
                           limit (a process holds ~3 files per pod); auto = enough for nodes x
                           node-pods at the raised limit, 1 to 8 (default 0 = in kube-sim itself)
  --history N              watch history window in changes (default 20000)
  --log-level L            pino level (default info)
  --help                   this text
`

/** '20ms', '5s', '1.5s', '1m', '0' -> ms. */
export function parseDuration(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim())
  if (m === null) throw new Error(`${flag}: invalid duration '${s}' (e.g. 500ms, 5s, 1m)`)
  const n = Number(m[1])
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n * 1000
}

/** '5-15s' (unit applies to both ends), '500ms-2s', '3s' -> a range in ms. */
export function parseRange(s: string, flag: string): Range {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?-(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim())
  if (m === null) { const v = parseDuration(s, flag); return { min: v, max: v } }
  const unitHi = m[4] ?? 's'
  const min = parseDuration(m[1] + (m[2] ?? unitHi), flag)
  const max = parseDuration(m[3] + unitHi, flag)
  if (max < min) throw new Error(`${flag}: range '${s}' ends before it starts`)
  return { min, max }
}

export function parseKubeSimConfig(argv: string[], env: NodeJS.ProcessEnv): KubeSimConfig {
  const { values } = parseArgs({ args: argv, strict: true, options: {
    help: { type: 'boolean', default: false }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' },
    'write-kubeconfig': { type: 'string' }, namespace: { type: 'string', multiple: true },
    nodes: { type: 'string', default: '10' }, 'node-cpu': { type: 'string', default: '32' }, 'node-memory': { type: 'string', default: '128Gi' },
    'node-pods': { type: 'string', default: '110' }, 'node-gpus': { type: 'string', default: '0' },
    'pull-time': { type: 'string', default: '0' }, 'start-time': { type: 'string', default: '0' },
    'rate-limit': { type: 'string', default: '0' }, latency: { type: 'string', default: '0' },
    'pull-failure-rate': { type: 'string', default: '0' }, 'fail-image': { type: 'string', multiple: true },
    runtime: { type: 'string', default: 'http' }, 'pod-hosts': { type: 'string', default: '0' }, history: { type: 'string', default: '20000' },
    'log-level': { type: 'string', default: env.LOG_LEVEL ?? 'info' },
  } })
  const problems: string[] = []
  const int = (flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = Number(values[flag as keyof typeof values])
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`--${flag} must be an integer in [${min}, ${max}]`)
    return v
  }
  const attempt = <T>(f: () => T, fallback: T): T => { try { return f() } catch (err) { problems.push((err as Error).message); return fallback } }
  const rate = Number(values['pull-failure-rate'])
  if (!(rate >= 0 && rate <= 1)) problems.push('--pull-failure-rate must be between 0 and 1')
  const runtime = values.runtime as KubeSimConfig['runtime']
  if (!['http', 'none', 'singleuser'].includes(runtime)) problems.push(`--runtime must be http, none or singleuser, not '${runtime}'`)
  const podHosts = values['pod-hosts'] === 'auto' ? 'auto' : Number(values['pod-hosts'])
  if (podHosts !== 'auto' && !(Number.isInteger(podHosts) && podHosts >= 0 && podHosts <= MAX_POD_HOSTS)) problems.push(`--pod-hosts must be auto or an integer in [0, ${MAX_POD_HOSTS}], not '${values['pod-hosts']}'`)
  if (runtime === 'none' && typeof podHosts === 'number' && podHosts > 0) problems.push('--pod-hosts needs --runtime http or singleuser (nothing runs with none)')
  const config: KubeSimConfig = {
    help: values.help === true,
    host: values.host!, port: int('port', 0, 65535), writeKubeconfig: values['write-kubeconfig'],
    namespaces: values.namespace ?? ['default'],
    nodes: int('nodes', 0), nodeCpu: values['node-cpu']!, nodeMemory: values['node-memory']!, nodePods: int('node-pods', 1), nodeGpus: int('node-gpus', 0),
    pullTime: attempt(() => parseRange(values['pull-time']!, '--pull-time'), { min: 0, max: 0 }),
    startTime: attempt(() => parseRange(values['start-time']!, '--start-time'), { min: 0, max: 0 }),
    rateLimit: int('rate-limit', 0), latencyMs: attempt(() => parseDuration(values.latency!, '--latency'), 0),
    pullFailureRate: rate, failImages: values['fail-image'] ?? [], runtime, podHosts, historySize: int('history', 100), logLevel: values['log-level']!,
  }
  if (problems.length > 0 && !config.help) throw new Error(`invalid kube-sim options: ${problems.join('; ')}`)
  return Object.freeze(config)
}
