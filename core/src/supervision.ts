/**
 * What the supervisors share (the hub's and the proxy's cluster primaries, the hub's child proxy):
 * a free port chosen before the children bind it, and a count of recent restarts, which bounds a
 * crash loop and sets the backoff.
 */
import net from 'node:net'

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
