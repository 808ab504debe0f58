/**
 * One simulated browser's cookies: Path-scoped, Max-Age/Expires honoured, one host (the hub's
 * public origin, where every page and the proxy live). Enough of RFC 6265 for the hub's and the
 * single-user servers' cookies; not a general-purpose jar.
 */
interface Cookie { readonly name: string; readonly value: string; readonly path: string }

export class CookieJar {
  readonly #jar = new Map<string, Cookie>()

  get size(): number { return this.#jar.size }

  /** The `Cookie` header for a request to `path`, longest path first (as browsers order them). */
  header(path: string): string {
    return [...this.#jar.values()]
      .filter(c => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length)
      .map(c => `${c.name}=${c.value}`).join('; ')
  }

  /** Take every `Set-Cookie` of a response. */
  store(headers: Headers): void {
    for (const line of headers.getSetCookie()) this.#storeOne(line)
  }

  #storeOne(line: string): void {
    const [pair = '', ...attrs] = line.split(';')
    const i = pair.indexOf('=')
    if (i <= 0) return
    const name = pair.slice(0, i).trim(), value = pair.slice(i + 1).trim()
    let path = '/', expired = value === '' || value === '""'
    for (const a of attrs) {
      const eq = a.indexOf('=')
      const k = (eq < 0 ? a : a.slice(0, eq)).trim().toLowerCase(), v = eq < 0 ? '' : a.slice(eq + 1).trim()
      if (k === 'path' && v.startsWith('/')) path = v
      if (k === 'max-age' && Number(v) <= 0) expired = true
      if (k === 'expires' && new Date(v).getTime() < Date.now()) expired = true
    }
    if (expired) this.#jar.delete(`${name};${path}`)
    else this.#jar.set(`${name};${path}`, { name, value, path })
  }
}
