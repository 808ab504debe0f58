/**
 * A spawner whose servers are tiny real HTTP servers in this process, started in a few
 * milliseconds: for burst tests and for measuring the hub's own spawn throughput without
 * process start-up in the way. Not a mock: the hub's readiness check, routes and proxy traffic
 * hit these servers for real.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { PollResult, Spawner, SpawnerState, SpawnSpec, StartOptions, StartResult } from '../../spawner/src/index.js'

export interface InstantSpawner extends Spawner {
  /** The most starts that were in flight at once. */
  readonly maxConcurrent: number
  readonly started: number
  readonly running: number
}

export function createInstantSpawner(o: { startDelayMs?: number } = {}): InstantSpawner {
  const servers = new Map<number, http.Server>()
  let inflight = 0, maxConcurrent = 0, started = 0
  return {
    kind: 'instant',
    get maxConcurrent() { return maxConcurrent },
    get started() { return started },
    get running() { return servers.size },
    async start(spec: SpawnSpec, opts: StartOptions): Promise<StartResult> {
      inflight++
      maxConcurrent = Math.max(maxConcurrent, inflight)
      try {
        opts.progress({ progress: 50, message: 'Spawning server...' })
        if (o.startDelayMs) await new Promise(r => setTimeout(r, o.startDelayMs))
        opts.signal.throwIfAborted()
        const server = http.createServer((req, res) => {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.end(`server of ${spec.user}${spec.serverName ? `/${spec.serverName}` : ''} at ${req.url}`)
        })
        server.keepAliveTimeout = 1000
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
        const port = (server.address() as AddressInfo).port
        servers.set(port, server)
        started++
        return { url: `http://127.0.0.1:${port}`, state: { port } }
      } finally {
        inflight--
      }
    },
    async stop(state: SpawnerState) {
      const server = servers.get(Number(state.port))
      if (!server) return
      servers.delete(Number(state.port))
      await new Promise(r => { server.close(r); server.closeAllConnections() })
    },
    async poll(state: SpawnerState): Promise<PollResult> {
      return servers.has(Number(state.port)) ? { running: true } : { running: false }
    },
    async close() {
      await Promise.all([...servers.values()].map(s => new Promise(r => { s.close(r); s.closeAllConnections() })))
      servers.clear()
    },
  }
}
