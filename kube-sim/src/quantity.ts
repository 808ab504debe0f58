/** Kubernetes resource quantities ('500m', '2', '1Gi', '128M') to numbers. */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 }

/** The quantity as a plain number (cores for CPU, bytes for memory). Throws on garbage. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim())
  if (m === null || Number.isNaN(Number(m[1]))) throw new Error(`invalid quantity '${q}'`)
  const suffix = m[2] ?? ''
  return Number(m[1]) * (BINARY[suffix] ?? DECIMAL[suffix])
}

/** CPU in millicores, rounded up as the scheduler does. */
export function cpuMillis(q: string | number | undefined): number {
  return q === undefined ? 0 : Math.ceil(parseQuantity(q) * 1000 - 1e-9)
}

export function bytes(q: string | number | undefined): number {
  return q === undefined ? 0 : Math.ceil(parseQuantity(q))
}
