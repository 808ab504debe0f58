/**
 * `p`'s value if it settles within `ms`, else `undefined` while `p` goes on (JupyterHub's
 * slow_spawn_timeout and slow_stop_timeout, the spawn page's short wait). A rejection within `ms`
 * rejects. The timer never outlives the wait.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<undefined>(resolve => { timer = setTimeout(() => resolve(undefined), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
