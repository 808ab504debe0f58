/**
 * The simulated container runtime: what "running the pod's container" means in kube-sim. Each
 * container gets the pod IP (a 127.x.y.z loopback address: Linux routes all of 127/8 to lo) and
 * the pod's environment.
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import { IpAllocator, startVirtualServer, type VirtualServerExtra } from './virtual-server.js'

export interface ContainerSpec {
  readonly namespace: string
  readonly podName: string
  readonly image: string
  /** The pod IP, e.g. 127.64.0.7. */
  readonly ip: string
  /** The first declared containerPort (8888 for user servers). */
  readonly port: number
  readonly env: Readonly<Record<string, string>>
}

export interface RunningContainer {
  /** Stop the container (SIGTERM equivalent); resolves when it no longer listens. */
  stop(): Promise<void>
}

export interface ContainerRuntime {
  readonly name: string
  start(spec: ContainerSpec): Promise<RunningContainer>
  /** What the runtime holds, for /sim/stats (pod hosts: containers per host). */
  stats?(): Record<string, unknown>
  /** Release what the runtime owns (pod hosts: stop the child processes); kube-sim's close() calls it. */
  close?(): Promise<void>
}

/** No process at all: the pod is Running but nothing listens. For 10k-pod informer benchmarks. */
export const noneRuntime: ContainerRuntime = {
  name: 'none',
  async start() { return { async stop() {} } },
}

/**
 * A tiny HTTP server per pod on `ip:port`, answering every request with JSON naming the pod and
 * the user (from `JUPYTERHUB_USER`). Fast to start; enough for "the URL reaches the pod" checks.
 */
export const httpRuntime: ContainerRuntime = {
  name: 'http',
  async start(spec) {
    const body = JSON.stringify({ pod: spec.podName, namespace: spec.namespace, user: spec.env.JUPYTERHUB_USER ?? null, image: spec.image })
    const server: Server = createServer((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json', 'x-kube-sim-pod': spec.podName })
      res.end(body)
    })
    server.keepAliveTimeout = 1000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(spec.port, spec.ip, () => { server.off('error', reject); resolve() })
    })
    return {
      stop: () => new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
    }
  },
}

/** Pod IPs: 127.64.0.1 upwards, from a random /16 block (see virtual-server.ts). */
export { IpAllocator }

/**
 * The virtual single-user server (virtual-server.ts, shared with sim-servers) as the container: it parses
 * the pod's JUPYTERHUB_* environment exactly as in a pod, binds the pod IP, checks the hub's
 * version and reports activity. A hub must be reachable at JUPYTERHUB_API_URL.
 */
export function singleUserRuntime(log: Logger, extra: Omit<VirtualServerExtra, 'signal'> = {}): ContainerRuntime {
  return {
    name: 'singleuser',
    async start(spec) {
      const server = await startVirtualServer(spec.env, spec.ip, spec.port, log.child({ pod: spec.podName }), extra)
      return { stop: () => server.close() }
    },
  }
}
