/**
 * One signal that aborts when any of `signals` does, and lets go of them when unlinked.
 * `AbortSignal.any` would do, but on Node 20 every call leaves a WeakRef in each source signal's
 * set of dependants for good: ~65 bytes a call against a signal that lives as long as the spawner
 * (300k calls: +19 MB after GC; issue #16, bench-results/2026-12-02-hub-memory).
 */
export interface LinkedSignal {
  readonly signal: AbortSignal
  /** Remove the listeners from the source signals; call when the work is done. */
  unlink(): void
}

export function linkSignals(signals: readonly AbortSignal[]): LinkedSignal {
  const controller = new AbortController()
  const aborted = signals.find(s => s.aborted)
  if (aborted) {
    controller.abort(aborted.reason)
    return { signal: controller.signal, unlink: () => undefined }
  }
  const listeners = signals.map(s => {
    const onAbort = (): void => { controller.abort(s.reason); unlink() }
    s.addEventListener('abort', onAbort, { once: true })
    return [s, onAbort] as const
  })
  const unlink = (): void => { for (const [s, f] of listeners) s.removeEventListener('abort', f) }
  return { signal: controller.signal, unlink }
}
