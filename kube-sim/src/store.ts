/**
 * The simulated etcd + watch cache: objects per resource, one global resourceVersion, a bounded
 * history of changes for watches that resume, and watch fan-out that serialises each change once
 * (every watcher gets the same bytes; only the selector test runs per watcher).
 */
import { randomUUID } from 'node:crypto'
import type { Matcher } from './selectors.js'

export type Resource = 'pods' | 'events' | 'persistentvolumeclaims' | 'namespaces' | 'nodes'
export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED'

interface Change {
  readonly rv: number
  readonly resource: Resource
  readonly type: ChangeType
  readonly obj: any
  /** `{"type":..,"object":..}\n`, built lazily once and shared by every watcher. */
  line?: string
}

export interface Watcher {
  readonly resource: Resource
  readonly namespace: string | undefined
  readonly match: Matcher
  send(line: string): void
}

const KIND: Record<Resource, string> = {
  pods: 'Pod', events: 'Event', persistentvolumeclaims: 'PersistentVolumeClaim', namespaces: 'Namespace', nodes: 'Node',
}

export function kindOf(resource: Resource): string { return KIND[resource] }

export class Store {
  #rv = 1
  readonly #objects = new Map<Resource, Map<string, any>>()
  readonly #history: Change[] = []
  #historyStart = 0
  readonly #historySize: number
  readonly #watchers = new Map<Resource, Set<Watcher>>()

  constructor(historySize: number) {
    this.#historySize = historySize
    for (const r of Object.keys(KIND) as Resource[]) {
      this.#objects.set(r, new Map())
      this.#watchers.set(r, new Set())
    }
  }

  get resourceVersion(): number { return this.#rv }

  /** The oldest resourceVersion a watch may resume from (older -> 410 Gone). */
  get oldestResumable(): number {
    const first = this.#history[this.#historyStart]
    return first === undefined ? this.#rv : first.rv - 1
  }

  count(resource: Resource): number { return this.#objects.get(resource)!.size }

  get(resource: Resource, namespace: string | undefined, name: string): any {
    return this.#objects.get(resource)!.get(key(namespace, name))
  }

  /** Objects of a resource, optionally one namespace, sorted by key (the API's list order). */
  list(resource: Resource, namespace: string | undefined): any[] {
    const map = this.#objects.get(resource)!
    const keys = [...map.keys()].sort()
    const out: any[] = []
    const prefix = namespace === undefined ? undefined : `${namespace}/`
    for (const k of keys) if (prefix === undefined || k.startsWith(prefix)) out.push(map.get(k))
    return out
  }

  /** Insert a new object: fills uid, resourceVersion, creationTimestamp. */
  create(resource: Resource, obj: any): any {
    obj.metadata.uid ??= randomUUID()
    obj.metadata.creationTimestamp ??= new Date().toISOString()
    return this.#commit(resource, 'ADDED', obj)
  }

  /** Replace an existing object (same key) with a new version. */
  update(resource: Resource, obj: any): any {
    return this.#commit(resource, 'MODIFIED', obj)
  }

  remove(resource: Resource, obj: any): any {
    return this.#commit(resource, 'DELETED', obj)
  }

  #commit(resource: Resource, type: ChangeType, obj: any): any {
    this.#rv++
    obj.metadata.resourceVersion = String(this.#rv)
    const map = this.#objects.get(resource)!
    const k = key(obj.metadata.namespace, obj.metadata.name)
    if (type === 'DELETED') map.delete(k)
    else map.set(k, obj)
    // Objects are replaced, never mutated after commit: history and watchers may hold them.
    Object.freeze(obj)
    const change: Change = { rv: this.#rv, resource, type, obj }
    this.#history.push(change)
    if (this.#history.length - this.#historyStart > this.#historySize) {
      this.#historyStart++
      if (this.#historyStart > 4096) { this.#history.splice(0, this.#historyStart); this.#historyStart = 0 }
    }
    for (const w of this.#watchers.get(resource)!) {
      if (matches(w, obj)) w.send(lineOf(change))
    }
    return obj
  }

  /** Changes after `rv` (for a resuming watch). Undefined when `rv` is older than the history window. */
  changesSince(resource: Resource, rv: number): Array<{ type: ChangeType, obj: any, line: () => string }> | undefined {
    if (rv < this.oldestResumable) return undefined
    const out: Array<{ type: ChangeType, obj: any, line: () => string }> = []
    for (let i = this.#historyStart; i < this.#history.length; i++) {
      const c = this.#history[i]
      if (c.rv > rv && c.resource === resource) out.push({ type: c.type, obj: c.obj, line: () => lineOf(c) })
    }
    return out
  }

  watch(w: Watcher): () => void {
    const set = this.#watchers.get(w.resource)!
    set.add(w)
    return () => { set.delete(w) }
  }

  watcherCount(): number {
    let n = 0
    for (const s of this.#watchers.values()) n += s.size
    return n
  }
}

function key(namespace: string | undefined, name: string): string {
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`
}

export function matches(w: Pick<Watcher, 'namespace' | 'match'>, obj: any): boolean {
  return (w.namespace === undefined || obj.metadata.namespace === w.namespace) && w.match(obj)
}

function lineOf(c: Change): string {
  c.line ??= `{"type":"${c.type}","object":${JSON.stringify(c.obj)}}\n`
  return c.line
}
