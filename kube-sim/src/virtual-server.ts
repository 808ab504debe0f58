/**
 * The virtual single-user server, shared by kube-sim (a pod's container) and sim-servers (a server
 * JupyterHub's spawner asks for): the real built-in single-user server (`spawner/src/singleuser`)
 * bound to its own loopback address, configured from the JUPYTERHUB_* environment exactly as a
 * process would be. Many of them live in one process; each is a few sockets and timers.
 */
import type { Logger } from 'pino'
import { createSingleUserServer, parseSingleUserConfig } from '../../spawner/src/singleuser/index.js'
import type { SingleUserServerOptions } from '../../spawner/src/singleuser/index.js'

export type VirtualServerExtra = Partial<Pick<SingleUserServerOptions, 'hubRetryDelaysMs' | 'activityIntervalMs' | 'signal'>>

export interface VirtualServer {
  /** `http://127.64.0.7:8888/user/alice/` */
  readonly url: string
  close(): Promise<void>
}

/**
 * Parse `env` as the single-user server would, bind `ip:port` (overriding JUPYTERHUB_SERVICE_URL's
 * host and port: the caller owns the address), check the hub's version and start reporting activity.
 * Rejects when the environment is incomplete, the hub is unreachable or the address is taken.
 */
export async function startVirtualServer(env: Readonly<Record<string, string>>, ip: string, port: number, log: Logger, extra: VirtualServerExtra = {}): Promise<VirtualServer> {
  const config = parseSingleUserConfig(env)
  const server = await createSingleUserServer({ ...config, ...extra, host: ip, port, log })
  return { url: server.url, close: () => server.close() }
}

/**
 * Loopback addresses for virtual servers, `127.<first>.0.1` upwards (never 127.0.0.x, where hubs and
 * tests live), skipping .0 and .255, never reused within a process (as on a real cluster with a
 * large pod CIDR: a stale address in some cache must not reach another user's server).
 * `spanBlocks` is how many /16s the allocator may use (63 for kube-sim: 127.64-127.126).
 * `startAt` offsets the first address, so two processes on one machine (two test files, or kube-sim
 * beside sim-servers) rarely pick the same one; callers also skip an address found in use.
 */
export class IpAllocator {
  #next: number
  readonly #first: number
  readonly #limit: number
  constructor(first = 64, spanBlocks = 63, startAt = 0) {
    this.#first = first
    this.#limit = spanBlocks * 256 * 254
    this.#next = startAt % this.#limit
  }

  allocate(): string {
    const i = this.#next++
    if (i >= this.#limit) throw new Error('out of loopback addresses')
    const block = Math.floor(i / 254)
    return `127.${this.#first + (block >> 8)}.${block & 255}.${(i % 254) + 1}`
  }
}
