/**
 * The routing table: an exact-key Map (for the API, in insertion order as CHP's object) plus a
 * segment-wise trie for longest-prefix matching of request paths (as CHP's lib/trie.js).
 * Pure: no I/O, no timers. `lastActivity` is a plain number (ms since epoch) that the data plane
 * overwrites in place: no allocation, no async work per request (CHP allocated a Date and went
 * through a promise chain on every chunk).
 */
export interface Route {
  /** Normalised key: leading '/', no trailing '/' except for the root. */
  readonly path: string
  /** The POSTed body, verbatim (includes `target`). Never mutated. */
  readonly data: Readonly<Record<string, unknown>>
  readonly target: string
  /** Number of path segments in `path` (0 for '/'), used to strip the prefix. */
  readonly depth: number
  /** JSON of `data` without its closing brace, made once at add time (GET serialises 10k routes fast). */
  readonly jsonHead: string | undefined
  /** ms since epoch; written by the data plane. */
  lastActivity: number
}

interface TrieNode {
  children: Map<string, TrieNode> | undefined
  route: Route | undefined
}

/** CHP's cleanPath: ensure a leading '/', drop one trailing '/' (except for '/' itself). */
export function normalizeRoutePath(path: string): string {
  let p = path.length === 0 || path[0] !== '/' ? `/${path}` : path
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
  return p
}

/** '/a/b' -> ['a', 'b']; '/' -> []. Only the normalised form's separators count. */
function keySegments(key: string): string[] {
  return key === '/' ? [] : key.slice(1).split('/')
}

function newNode(): TrieNode {
  return { children: undefined, route: undefined }
}

export class RouteTable {
  readonly #byPath = new Map<string, Route>()
  #root: TrieNode = newNode()

  get size(): number {
    return this.#byPath.size
  }

  /** Add or replace the route at `path`; returns the stored route. `target` must already be validated. */
  add(path: string, data: Readonly<Record<string, unknown>>, lastActivity: number): Route {
    const key = normalizeRoutePath(path)
    const segments = keySegments(key)
    const jsonHead = Object.hasOwn(data, 'last_activity') ? undefined : JSON.stringify(data).slice(0, -1)
    const route: Route = { path: key, data, target: data.target as string, depth: segments.length, jsonHead, lastActivity }
    let node = this.#root
    for (const segment of segments) {
      node.children ??= new Map()
      let child = node.children.get(segment)
      if (child === undefined) {
        child = newNode()
        node.children.set(segment, child)
      }
      node = child
    }
    node.route = route
    this.#byPath.set(key, route)
    return route
  }

  /** Remove the route at `path`; false when there was none. Prunes empty trie branches. */
  remove(path: string): boolean {
    const key = normalizeRoutePath(path)
    if (!this.#byPath.delete(key)) return false
    const segments = keySegments(key)
    const trail: TrieNode[] = [this.#root]
    let node = this.#root
    for (const segment of segments) {
      node = node.children!.get(segment)!
      trail.push(node)
    }
    node.route = undefined
    for (let i = segments.length; i > 0; i--) {
      const child = trail[i]
      if (child.route !== undefined || (child.children !== undefined && child.children.size > 0)) break
      trail[i - 1].children!.delete(segments[i - 1])
    }
    return true
  }

  /** The route stored exactly at `path` (after normalisation), or undefined. */
  get(path: string): Route | undefined {
    return this.#byPath.get(normalizeRoutePath(path))
  }

  /**
   * Longest-prefix match of a decoded request path, segment-wise ('/user/al' does not match
   * '/user/alice'). Leading and trailing slashes of the request path are ignored, as in CHP.
   */
  match(path: string): Route | undefined {
    let node = this.#root
    let best = node.route
    let start = 0
    while (start < path.length && path.charCodeAt(start) === 47) start++
    let end = path.length
    while (end > start && path.charCodeAt(end - 1) === 47) end--
    while (start < end) {
      if (node.children === undefined) break
      let slash = path.indexOf('/', start)
      if (slash === -1 || slash > end) slash = end
      const child = node.children.get(path.slice(start, slash))
      if (child === undefined) break
      node = child
      if (node.route !== undefined) best = node.route
      start = slash + 1
    }
    return best
  }

  /** All routes in insertion order (a replaced route keeps its place, as keys of a JS object do). */
  routes(): IterableIterator<Route> {
    return this.#byPath.values()
  }

  /** Replace everything at once (PUT /api/routes): callers validate first, so this cannot fail halfway. */
  replaceAll(entries: ReadonlyArray<readonly [string, Readonly<Record<string, unknown>>, number]>): void {
    this.#byPath.clear()
    this.#root = newNode()
    for (const [path, data, lastActivity] of entries) this.add(path, data, lastActivity)
  }
}

/** The wire form of a route: data keys in body order, then `last_activity` (ISO, ms precision). */
export function routeToJson(route: Route): Record<string, unknown> {
  return { ...route.data, last_activity: new Date(route.lastActivity).toISOString() }
}

/** routeToJson as a JSON string, from the cached head: one toISOString per route, no object copies. */
export function routeJsonText(route: Route): string {
  if (route.jsonHead === undefined) return JSON.stringify(routeToJson(route))
  const stamp = new Date(route.lastActivity).toISOString()
  return route.jsonHead.length > 1 ? `${route.jsonHead},"last_activity":"${stamp}"}` : `{"last_activity":"${stamp}"}`
}
