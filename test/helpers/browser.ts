/**
 * A small browser-like HTTP client for end-to-end tests: a cookie jar that honours Path and
 * Max-Age, manual redirects (each hop recorded), and form helpers. Real HTTP via global fetch.
 */
interface Cookie { name: string; value: string; path: string }

export interface Hop { readonly url: string; readonly status: number; readonly location?: string }

export interface BrowserResponse {
  readonly status: number
  readonly url: string
  readonly headers: Headers
  readonly body: string
  readonly hops: readonly Hop[]
}

export class Browser {
  readonly base: string
  readonly #jar = new Map<string, Cookie>()

  constructor(base: string) {
    this.base = base.replace(/\/+$/, '')
  }

  cookie(name: string): string | undefined {
    for (const c of this.#jar.values()) if (c.name === name) return c.value
    return undefined
  }

  setCookie(name: string, value: string, path = '/'): void {
    this.#jar.set(`${name};${path}`, { name, value, path })
  }

  #cookieHeader(path: string): string {
    return [...this.#jar.values()].filter(c => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length).map(c => `${c.name}=${c.value}`).join('; ')
  }

  #store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const i = pair!.indexOf('=')
      const name = pair!.slice(0, i).trim(), value = pair!.slice(i + 1).trim()
      let path = '/', expired = value === '' || value === '""'
      for (const a of attrs) {
        const [k, v = ''] = a.trim().split('=')
        if (k!.toLowerCase() === 'path') path = v
        if (k!.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true
        if (k!.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true
      }
      if (expired) this.#jar.delete(`${name};${path}`)
      else this.#jar.set(`${name};${path}`, { name, value, path })
    }
  }

  /** One request, no redirect following. */
  async fetch(pathOrUrl: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    const url = new URL(pathOrUrl, this.base)
    const headers: Record<string, string> = { ...init.headers }
    const cookies = this.#cookieHeader(url.pathname)
    if (cookies) headers.cookie = cookies
    const res = await fetch(url, { ...init, headers, redirect: 'manual' })
    this.#store(res.headers)
    return res
  }

  /** A request that follows redirects like a browser (at most `maxHops`). */
  async go(pathOrUrl: string, init: RequestInit & { headers?: Record<string, string> } = {}, maxHops = 15): Promise<BrowserResponse> {
    const hops: Hop[] = []
    let url = new URL(pathOrUrl, this.base).toString()
    let req = init
    for (let i = 0; i <= maxHops; i++) {
      const res = await this.fetch(url, req)
      const location = res.headers.get('location') ?? undefined
      hops.push({ url, status: res.status, location })
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel()
        url = new URL(location, url).toString()
        req = { headers: init.headers } // a redirect is a GET
        continue
      }
      return { status: res.status, url, headers: res.headers, body: await res.text(), hops }
    }
    throw new Error(`more than ${maxHops} redirects: ${hops.map(h => `${h.status} ${h.url}`).join(' -> ')}`)
  }

  /** The value of a hidden `_xsrf` field in a page. */
  static xsrf(page: string): string {
    const m = /name="_xsrf" value="([^"]+)"/.exec(page)
    if (!m) throw new Error('no _xsrf field on the page')
    return m[1]!
  }

  /** Submit a form: GET the page for its xsrf field, then POST the fields. */
  async submit(pagePath: string, action: string, fields: Record<string, string>): Promise<BrowserResponse> {
    const page = await this.go(pagePath)
    const body = new URLSearchParams({ _xsrf: Browser.xsrf(page.body), ...fields })
    return this.go(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.base } })
  }

  async login(user: string, password: string): Promise<BrowserResponse> {
    return this.submit('/hub/login', '/hub/login', { username: user, password })
  }
}
