/**
 * The HTTP face of kube-sim: core/v1 pods, persistentvolumeclaims, events, namespaces and nodes
 * (create, get, list with selectors and pagination, watch, delete, merge patch), discovery, fault
 * injection at the edge (latency, a 429 rate cap, forced errors, dropped watches) and a record
 * of every request for tests.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Cluster, KubeletFaults } from './cluster.js'
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js'
import type { Matcher } from './selectors.js'
import { alreadyExists, badRequest, gone, invalid, methodNotAllowed, notFound, StatusError, tooManyRequests } from './status.js'
import { kindOf, matches } from './store.js'
import type { Resource, Store } from './store.js'

const MAX_BODY = 1024 * 1024
const MAX_WATCH_BUFFER = 64 * 1024 * 1024
const NAMESPACED: ReadonlySet<string> = new Set(['pods', 'events', 'persistentvolumeclaims'])
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** One recorded API request. */
export interface RecordedRequest {
  /** ms since the sim started */
  readonly t: number
  readonly method: string
  readonly path: string
  readonly query: string
  readonly verb: string
  readonly resource: string
  /** The object's name: from the path, or from the body of a create. */
  name?: string
  status: number
  ms: number
}

/** Edge faults, mutable at run time. */
export interface ApiFaults {
  /** Added to every request before it is handled, ms. */
  latencyMs: number
  /** Requests per second before answering 429 (0 = unlimited). */
  rateLimit: number
  /** Retry-After sent with a 429, seconds. */
  retryAfterSeconds: number
  /** The next `count` requests (optionally only those matching `verb`/`resource`) answer `status`. */
  failNext: { count: number, status: number, verb?: string, resource?: string }
}

export interface ApiOptions {
  readonly store: Store
  readonly cluster: Cluster
  readonly faults: ApiFaults & KubeletFaults
  /** Interval of BOOKMARK events on watches that asked for them, ms. */
  readonly bookmarkIntervalMs: number
  /** Server-side watch timeout when the client sends none, ms (the real one is 5-10 min). */
  readonly watchTimeoutMs: number
  /** Keep at most this many request records. */
  readonly maxRecorded: number
  readonly serverAddress: () => string
  /** The container runtime's own stats (pod hosts), under `runtime` in /sim/stats. */
  readonly runtimeStats?: () => Record<string, unknown> | undefined
}

interface Route {
  resource: string
  namespace?: string
  name?: string
}

export class KubeApi {
  readonly #o: ApiOptions
  readonly #started = Date.now()
  readonly #requests: RecordedRequest[] = []
  readonly #counts = new Map<string, number>()
  readonly #perMinute = new Map<number, Map<string, number>>()
  readonly #watches = new Set<ServerResponse>()
  #tokens = 0
  #tokensAt = Date.now()

  constructor(options: ApiOptions) {
    this.#o = options
  }

  requests(): RecordedRequest[] { return this.#requests.slice() }

  clearRequests(): void { this.#requests.length = 0 }

  /** Close every open watch stream (as an API server restart or a load balancer would). */
  dropWatches(): number {
    const n = this.#watches.size
    for (const res of this.#watches) res.destroy()
    this.#watches.clear()
    return n
  }

  stats(): Record<string, unknown> {
    const runtime = this.#o.runtimeStats?.()
    const perMinute = [...this.#perMinute].sort((a, b) => a[0] - b[0])
      .map(([minute, m]) => ({ minute, total: [...m.values()].reduce((a, b) => a + b, 0), ...Object.fromEntries(m) }))
    return {
      uptimeSeconds: (Date.now() - this.#started) / 1000,
      objects: { pods: this.#o.store.count('pods'), events: this.#o.store.count('events'),
        persistentvolumeclaims: this.#o.store.count('persistentvolumeclaims'), namespaces: this.#o.store.count('namespaces') },
      resourceVersion: this.#o.store.resourceVersion,
      openWatches: this.#watches.size,
      cluster: this.#o.cluster.usage(),
      ...(runtime !== undefined ? { runtime } : {}),
      requests: { total: [...this.#counts.values()].reduce((a, b) => a + b, 0), byVerbResource: Object.fromEntries(this.#counts), perMinute },
    }
  }

  /** The request handler for `http.createServer`. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://sim')
    const method = req.method ?? 'GET'
    if (url.pathname.startsWith('/sim/')) {
      this.#simEndpoint(req, url, res).catch(err => {
        const st = err instanceof StatusError ? err : new StatusError(500, 'InternalError', (err as Error).message)
        if (!res.headersSent) sendJson(res, st.code, st.body())
      })
      return
    }
    const route = parseRoute(url.pathname)
    const verb = verbOf(method, route, url)
    const rec: RecordedRequest = { t: Date.now() - this.#started, method, path: url.pathname, query: url.search.slice(1),
      verb, resource: route?.resource ?? url.pathname, name: route?.name, status: 0, ms: 0 }
    this.#record(rec)
    const t0 = performance.now()
    res.on('finish', () => { rec.ms = performance.now() - t0 })
    this.#serve(req, res, url, route, rec).catch(err => {
      const st = err instanceof StatusError ? err : new StatusError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`)
      rec.status = st.code
      if (res.headersSent) { res.destroy(); return }
      sendJson(res, st.code, st.body(), st.headers)
    })
  }

  async #serve(req: IncomingMessage, res: ServerResponse, url: URL, route: Route | undefined, rec: RecordedRequest): Promise<void> {
    const f = this.#o.faults
    // Read a create's body up front so that even a rejected create is recorded with its name.
    const createBody = req.method === 'POST' ? await readJson(req) : undefined
    if (typeof createBody?.metadata?.name === 'string') rec.name = createBody.metadata.name
    if (f.latencyMs > 0) await sleep(f.latencyMs)
    if (!this.#admit()) throw tooManyRequests(f.retryAfterSeconds)
    if (f.failNext.count > 0 && (f.failNext.verb === undefined || f.failNext.verb === rec.verb) &&
      (f.failNext.resource === undefined || f.failNext.resource === rec.resource)) {
      f.failNext.count--
      throw new StatusError(f.failNext.status, f.failNext.status === 503 ? 'ServiceUnavailable' : 'InternalError', 'injected failure (kube-sim)')
    }
    const discovery = this.#discovery(url.pathname)
    if (discovery !== undefined) { rec.status = 200; sendJson(res, 200, discovery); return }
    if (route === undefined) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
    const resource = route.resource as Resource
    if (route.namespace !== undefined && route.resource !== 'namespaces' && this.#o.store.get('namespaces', undefined, route.namespace) === undefined &&
      req.method === 'POST') {
      throw notFound('namespaces', route.namespace)
    }
    const method = req.method ?? 'GET'
    if (method === 'GET' && route.name === undefined) {
      if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') { rec.status = 200; this.#watch(req, res, url, route); return }
      rec.status = 200
      sendJson(res, 200, this.#list(url, route))
      return
    }
    let out: { status: number, body: unknown }
    if (method === 'GET') out = { status: 200, body: this.#get(resource, route) }
    else if (method === 'POST' && route.name === undefined) out = { status: 201, body: this.#create(resource, route, createBody) }
    else if (method === 'DELETE' && route.name !== undefined) out = { status: 200, body: this.#delete(resource, route, url, await readJson(req, true)) }
    else if (method === 'PATCH' && route.name !== undefined) out = { status: 200, body: this.#patch(resource, route, req.headers['content-type'] ?? '', await readJson(req)) }
    else throw methodNotAllowed()
    rec.status = out.status
    sendJson(res, out.status, out.body)
  }

  #record(rec: RecordedRequest): void {
    if (this.#requests.length < this.#o.maxRecorded) this.#requests.push(rec)
    const k = `${rec.verb} ${rec.resource}`
    this.#counts.set(k, (this.#counts.get(k) ?? 0) + 1)
    const minute = Math.floor(rec.t / 60_000)
    let m = this.#perMinute.get(minute)
    if (m === undefined) { m = new Map(); this.#perMinute.set(minute, m) }
    m.set(k, (m.get(k) ?? 0) + 1)
  }

  /** Token bucket: `rateLimit` per second, burst of one second's worth. */
  #admit(): boolean {
    const rate = this.#o.faults.rateLimit
    if (rate <= 0) return true
    const t = Date.now()
    this.#tokens = Math.min(rate, this.#tokens + ((t - this.#tokensAt) / 1000) * rate)
    this.#tokensAt = t
    if (this.#tokens < 1) return false
    this.#tokens--
    return true
  }

  #get(resource: Resource, route: Route): unknown {
    const obj = this.#o.store.get(resource, route.namespace, route.name!)
    if (obj === undefined) throw notFound(resource, route.name!)
    return obj
  }

  #list(url: URL, route: Route): unknown {
    const resource = route.resource as Resource
    const match = selectors(url, resource)
    const rv = this.#o.store.resourceVersion
    let items = this.#o.store.list(resource, route.namespace).filter(o => match(o))
    const cont = url.searchParams.get('continue')
    let listRv = rv
    if (cont !== null && cont !== '') {
      const token = decodeContinue(cont)
      if (token.rv < this.#o.store.oldestResumable) throw gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.')
      listRv = token.rv
      items = items.filter(o => keyOf(o) > token.start)
    }
    const limit = Number(url.searchParams.get('limit') ?? '0')
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) }
    if (limit > 0 && items.length > limit) {
      metadata.remainingItemCount = items.length - limit
      items = items.slice(0, limit)
      metadata.continue = Buffer.from(JSON.stringify({ rv: listRv, start: keyOf(items[items.length - 1]) })).toString('base64url')
    }
    return { kind: `${kindOf(resource)}List`, apiVersion: 'v1', metadata, items }
  }

  #watch(req: IncomingMessage, res: ServerResponse, url: URL, route: Route): void {
    const store = this.#o.store
    const resource = route.resource as Resource
    const match = selectors(url, resource)
    const rvParam = url.searchParams.get('resourceVersion') ?? ''
    const w = { resource, namespace: route.namespace, match }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' })
    res.flushHeaders()
    const send = (line: string): void => {
      // A watcher that cannot keep up is cut off, as the real API server does.
      if (res.writableLength > MAX_WATCH_BUFFER) { res.destroy(); return }
      res.write(line)
    }
    if (rvParam === '' || rvParam === '0') {
      for (const o of store.list(resource, route.namespace)) if (match(o)) send(`{"type":"ADDED","object":${JSON.stringify(o)}}\n`)
    } else {
      const rv = Number(rvParam)
      const changes = Number.isFinite(rv) ? store.changesSince(resource, rv) : undefined
      if (changes === undefined) {
        const st = gone(`too old resource version: ${rvParam} (${store.oldestResumable})`)
        res.end(`{"type":"ERROR","object":${JSON.stringify(st.body())}}\n`)
        return
      }
      for (const c of changes) if (matches(w, c.obj)) send(c.line())
    }
    const unwatch = store.watch({ ...w, send })
    this.#watches.add(res)
    const timers: NodeJS.Timeout[] = []
    if (url.searchParams.get('allowWatchBookmarks') === 'true') {
      timers.push(setInterval(() => send(`{"type":"BOOKMARK","object":{"kind":"${kindOf(resource)}","apiVersion":"v1","metadata":{"resourceVersion":"${store.resourceVersion}"}}}\n`), this.#o.bookmarkIntervalMs))
    }
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '0')
    timers.push(setTimeout(() => res.end(), timeoutSeconds > 0 ? timeoutSeconds * 1000 : this.#o.watchTimeoutMs))
    const cleanup = (): void => { unwatch(); this.#watches.delete(res); for (const t of timers) clearTimeout(t) }
    res.on('close', cleanup)
    req.on('close', cleanup)
  }

  #create(resource: Resource, route: Route, body: any): unknown {
    const store = this.#o.store
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body of the request was not a JSON object')
    body.metadata ??= {}
    const kind = kindOf(resource)
    if (body.kind !== undefined && body.kind !== kind) throw badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (v1) or kind ${body.kind} != ${kind}`)
    if (NAMESPACED.has(resource)) {
      if (body.metadata.namespace !== undefined && body.metadata.namespace !== route.namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
      body.metadata.namespace = route.namespace
    }
    if ((body.metadata.name === undefined || body.metadata.name === '') && typeof body.metadata.generateName === 'string') {
      body.metadata.name = `${body.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`
    }
    validate(kind, resource, body)
    if (store.get(resource, route.namespace, body.metadata.name) !== undefined) throw alreadyExists(resource, body.metadata.name)
    body.apiVersion = 'v1'
    body.kind = kind
    delete body.metadata.resourceVersion
    delete body.metadata.uid
    delete body.metadata.deletionTimestamp
    if (resource === 'pods') return this.#createPod(body)
    if (resource === 'persistentvolumeclaims') {
      body.spec.storageClassName ??= 'standard'
      body.spec.volumeName = `pvc-${randomBytes(16).toString('hex')}`
      body.status = { phase: 'Bound', accessModes: body.spec.accessModes, capacity: { storage: body.spec.resources?.requests?.storage ?? '1Gi' } }
    }
    if (resource === 'namespaces') body.status = { phase: 'Active' }
    return store.create(resource, body)
  }

  #createPod(body: any): unknown {
    const spec = body.spec
    spec.restartPolicy ??= 'Always'
    spec.terminationGracePeriodSeconds ??= 30
    spec.schedulerName ??= 'default-scheduler'
    spec.dnsPolicy ??= 'ClusterFirst'
    for (const c of spec.containers) { c.terminationMessagePath ??= '/dev/termination-log'; c.imagePullPolicy ??= 'IfNotPresent' }
    const hasReq = spec.containers.some((c: any) => c.resources?.requests !== undefined || c.resources?.limits !== undefined)
    body.status = { phase: 'Pending', qosClass: hasReq ? 'Burstable' : 'BestEffort' }
    const pod = this.#o.store.create('pods', body)
    this.#o.cluster.podCreated(pod)
    return this.#o.store.get('pods', pod.metadata.namespace, pod.metadata.name) ?? pod
  }

  #delete(resource: Resource, route: Route, url: URL, body: any): unknown {
    const store = this.#o.store
    const obj = store.get(resource, route.namespace, route.name!)
    if (obj === undefined) throw notFound(resource, route.name!)
    const pre = body?.preconditions
    if (pre?.uid !== undefined && pre.uid !== obj.metadata.uid) {
      throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${route.name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${obj.metadata.uid}`, { name: route.name, kind: resource })
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== obj.metadata.resourceVersion) {
      throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${route.name}": Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${obj.metadata.resourceVersion}`, { name: route.name, kind: resource })
    }
    if (resource === 'pods') {
      const q = url.searchParams.get('gracePeriodSeconds')
      const grace = q !== null ? Number(q) : (body?.gracePeriodSeconds ?? obj.spec.terminationGracePeriodSeconds ?? 30)
      if (!Number.isInteger(grace) || grace < 0) throw badRequest(`invalid gracePeriodSeconds '${String(q ?? body?.gracePeriodSeconds)}'`)
      return this.#o.cluster.deletePod(obj, grace)
    }
    if (resource === 'namespaces') {
      for (const r of ['pods', 'events', 'persistentvolumeclaims'] as const) {
        for (const o of store.list(r, route.name)) {
          if (r === 'pods') this.#o.cluster.deletePod(o, 0)
          else store.remove(r, structuredClone(o))
        }
      }
    }
    return store.remove(resource, structuredClone(obj))
  }

  #patch(resource: Resource, route: Route, contentType: string, patch: any): unknown {
    const type = contentType.split(';')[0].trim()
    if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
      throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json`)
    }
    const cur = this.#get(resource, route) as any
    const next = mergePatch(structuredClone(cur), patch)
    if (next?.metadata?.name !== cur.metadata.name || next.metadata.namespace !== cur.metadata.namespace || next.metadata.uid !== cur.metadata.uid) {
      throw invalid(kindOf(resource), cur.metadata.name, [{ field: 'metadata', message: 'field is immutable' }])
    }
    if (resource === 'pods' && JSON.stringify(next.spec) !== JSON.stringify(cur.spec)) {
      throw invalid('Pod', cur.metadata.name, [{ field: 'spec', message: 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds`' }])
    }
    validate(kindOf(resource), resource, next)
    return this.#o.store.update(resource, next)
  }

  #discovery(path: string): unknown {
    const p = path.replace(/\/+$/, '') || '/'
    if (p === '/version') return { major: '1', minor: '31', gitVersion: 'v1.31.0-kube-sim', gitCommit: 'kube-sim', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.22', compiler: 'gc', platform: 'linux/amd64' }
    if (p === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.#o.serverAddress() }] }
    if (p === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] }
    if (p === '/api/v1') {
      const r = (name: string, kind: string, namespaced: boolean, shortNames?: string[]): unknown => ({ name, singularName: kind.toLowerCase(), namespaced, kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'watch'], ...(shortNames !== undefined ? { shortNames } : {}) })
      return { kind: 'APIResourceList', groupVersion: 'v1', resources: [
        r('pods', 'Pod', true, ['po']), r('persistentvolumeclaims', 'PersistentVolumeClaim', true, ['pvc']), r('events', 'Event', true, ['ev']),
        r('namespaces', 'Namespace', false, ['ns']), r('nodes', 'Node', false, ['no'])] }
    }
    if (p === '/healthz' || p === '/readyz' || p === '/livez') return 'ok'
    return undefined
  }

  /**
   * The sim's own control API, for a kube-sim running as a separate process (load tests):
   * GET /sim/stats, GET /sim/requests, GET|POST /sim/faults (JSON subset of the faults),
   * POST /sim/drop-watches, POST /sim/evict {"namespace","name","message"?}.
   */
  async #simEndpoint(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const f = this.#o.faults
    const post = req.method === 'POST'
    if (url.pathname === '/sim/stats') return sendJson(res, 200, this.stats())
    if (url.pathname === '/sim/requests') return sendJson(res, 200, this.#requests)
    if (url.pathname === '/sim/faults') {
      if (post) {
        const b = await readJson(req)
        const num = (k: 'latencyMs' | 'rateLimit' | 'retryAfterSeconds' | 'pullFailureRate'): void => {
          if (b[k] === undefined) return
          if (typeof b[k] !== 'number' || !(b[k] >= 0)) throw badRequest(`${k} must be a number >= 0`)
          f[k] = b[k]
        }
        num('latencyMs'); num('rateLimit'); num('retryAfterSeconds'); num('pullFailureRate')
        if (b.failImages !== undefined) {
          if (!Array.isArray(b.failImages)) throw badRequest('failImages must be a list of images')
          f.failImages.clear()
          for (const i of b.failImages) f.failImages.add(String(i))
        }
        if (b.failNext !== undefined) f.failNext = { count: Number(b.failNext.count ?? 0), status: Number(b.failNext.status ?? 500), verb: b.failNext.verb, resource: b.failNext.resource }
      }
      return sendJson(res, 200, { latencyMs: f.latencyMs, rateLimit: f.rateLimit, retryAfterSeconds: f.retryAfterSeconds, pullFailureRate: f.pullFailureRate, failImages: [...f.failImages], failNext: f.failNext })
    }
    if (url.pathname === '/sim/drop-watches' && post) return sendJson(res, 200, { dropped: this.dropWatches() })
    if (url.pathname === '/sim/evict' && post) {
      const b = await readJson(req)
      if (typeof b.namespace !== 'string' || typeof b.name !== 'string') throw badRequest('namespace and name are required')
      const ok = this.#o.cluster.evict(b.namespace, b.name, typeof b.message === 'string' ? b.message : undefined)
      if (!ok) throw notFound('pods', b.name)
      return sendJson(res, 200, { evicted: b.name })
    }
    sendJson(res, 404, { error: 'unknown sim endpoint' })
  }
}

function parseRoute(pathname: string): Route | undefined {
  const parts = pathname.split('/').filter(s => s !== '').map(decodeURIComponent)
  if (parts[0] !== 'api' || parts[1] !== 'v1' || parts.length < 3) return undefined
  const rest = parts.slice(2)
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    if (!NAMESPACED.has(rest[2]) || rest.length > 4) return undefined
    return { resource: rest[2], namespace: rest[1], name: rest[3] }
  }
  if (rest.length > 2) return undefined
  if (rest[0] === 'namespaces' || rest[0] === 'nodes') return { resource: rest[0], name: rest[1] }
  if (NAMESPACED.has(rest[0]) && rest.length === 1) return { resource: rest[0] }
  return undefined
}

function verbOf(method: string, route: Route | undefined, url: URL): string {
  if (method === 'GET') {
    if (route === undefined || route.name !== undefined) return 'get'
    return url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1' ? 'watch' : 'list'
  }
  return ({ POST: 'create', DELETE: 'delete', PATCH: 'patch', PUT: 'update' } as Record<string, string>)[method] ?? method.toLowerCase()
}

function selectors(url: URL, resource: string): Matcher {
  try {
    const l = parseLabelSelector(url.searchParams.get('labelSelector') ?? undefined)
    const f = parseFieldSelector(url.searchParams.get('fieldSelector') ?? undefined, resource)
    return o => l(o) && f(o)
  } catch (err) {
    if (err instanceof SelectorError) throw badRequest(err.message)
    throw err
  }
}

function validate(kind: string, resource: string, body: any): void {
  const name = body.metadata?.name
  const causes: Array<{ field: string, message: string }> = []
  if (typeof name !== 'string' || name === '') causes.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' })
  else if (!DNS_SUBDOMAIN.test(name) || name.length > (resource === 'namespaces' ? 63 : 253)) {
    causes.push({ field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'` })
  }
  for (const [k, v] of Object.entries(body.metadata?.labels ?? {})) {
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) causes.push({ field: `metadata.labels`, message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (key ${k})` })
  }
  if (resource === 'pods') {
    const cs = body.spec?.containers
    if (!Array.isArray(cs) || cs.length === 0) causes.push({ field: 'spec.containers', message: 'Required value' })
    else cs.forEach((c: any, i: number) => {
      if (typeof c?.name !== 'string' || c.name === '') causes.push({ field: `spec.containers[${i}].name`, message: 'Required value' })
      if (typeof c?.image !== 'string' || c.image === '') causes.push({ field: `spec.containers[${i}].image`, message: 'Required value' })
    })
  }
  if (resource === 'persistentvolumeclaims' && body.spec?.resources?.requests?.storage === undefined) {
    causes.push({ field: 'spec.resources[storage]', message: 'Required value' })
  }
  if (causes.length > 0) throw invalid(kind, String(name ?? ''), causes)
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? target : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

function keyOf(o: any): string {
  return o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`
}

function decodeContinue(token: string): { rv: number, start: string } {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
    if (typeof v.rv === 'number' && typeof v.start === 'string') return v
  } catch { /* fall through */ }
  throw badRequest('continue key is not valid')
}

async function readJson(req: IncomingMessage, optional = false): Promise<any> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new StatusError(413, 'RequestEntityTooLarge', 'the request body is too large')
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') {
    if (optional) return undefined
    throw badRequest('the body of the request was empty')
  }
  try { return JSON.parse(text) } catch { throw badRequest('the body of the request could not be decoded as JSON') }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
