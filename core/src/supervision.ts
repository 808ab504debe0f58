/**
 * What the supervisors share (the hub's and the proxy's cluster primaries, the hub's child proxy,
 * kube-sim's pod hosts, the load test's child generators): a free port chosen before the children
 * bind it, a count of recent restarts, which bounds a crash loop and sets the backoff, and where a
 * forked child's entry module is.
 */
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The entry module `name` beside the caller's module (`fromUrl`: its import.meta.url), to fork:
 * `name.js` in dist/, `name.ts` under tsx (the tests), which the child then needs too; tsx resolved
 * from here, not from the working directory (a bare `--import tsx` would be).
 */
export function siblingEntry(fromUrl: string, name: string): { file: string; execArgv: string[] } {
  const self = fileURLToPath(fromUrl)
  const ext = path.extname(self)
  const tsx = (): string => { try { return import.meta.resolve('tsx') } catch { return 'tsx' } }
  return { file: path.join(path.dirname(self), `${name}${ext}`), execArgv: ext === '.ts' ? ['--import', tsx()] : [] }
}

/** A free TCP port on `host` ('' = all interfaces): chosen once, so every child asks for the same one. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, host === '' ? undefined : host, () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** Restarts within a sliding window (default one minute). */
export class RestartCount {
  readonly #times: number[] = []
  constructor(private readonly windowMs = 60_000) {}

  /** Record a restart now; returns the restarts within the window, this one included. */
  record(now = Date.now()): number {
    this.#times.push(now)
    while (this.#times.length > 0 && this.#times[0]! <= now - this.windowMs) this.#times.shift()
    return this.#times.length
  }
}
