/**
 * A V8 heap snapshot (the .heapsnapshot JSON: flat `nodes`/`edges` arrays and a `strings` table)
 * reduced to what the memory bench needs: self size by constructor, and self size by *holder*: the
 * nearest enclosing instance of a named class, with the property that leads into it, so that a
 * string in a Map in `#cache` of a `KubernetesSpawner` counts under `KubernetesSpawner.#cache`
 * rather than under "(string)". The holder walks the first strong retainer, at most 10 steps: an
 * approximation of retained size (the dominator tree), good enough to name what grows.
 */

export interface SnapshotSummary {
  readonly totalBytes: number
  readonly byConstructor: ReadonlyMap<string, { count: number; bytes: number }>
  readonly byHolder: ReadonlyMap<string, { count: number; bytes: number }>
}

export interface SnapshotDiffRow { name: string; countDelta: number; kbDelta: number; bytesPerUser: number }

/** Containers that say nothing about who holds them: walk past them to their owner. */
const ANONYMOUS = new Set(['Object', 'Array', 'Map', 'Set', 'WeakMap', 'Promise', 'system / Context', '(object properties)', '(object elements)'])
const MAX_WALK = 10

export function summariseSnapshot(snap: any): SnapshotSummary {
  const meta = snap.snapshot.meta
  const nf: string[] = meta.node_fields, ef: string[] = meta.edge_fields
  const NF = nf.length, EF = ef.length
  const nodeTypes: string[] = meta.node_types[0], edgeTypes: string[] = meta.edge_types[0]
  const [tI, nI, sI, ecI] = ['type', 'name', 'self_size', 'edge_count'].map(f => nf.indexOf(f)) as [number, number, number, number]
  const [etI, enI, toI] = ['type', 'name_or_index', 'to_node'].map(f => ef.indexOf(f)) as [number, number, number]
  const nodes: number[] = snap.nodes, edges: number[] = snap.edges, strings: string[] = snap.strings
  const n = nodes.length / NF
  // the first strong retainer of each node, and the edge's name
  const parent = new Int32Array(n).fill(-1)
  const parentEdge = new Array<string>(n)
  for (let i = 0, e = 0; i < n; i++) {
    const count = nodes[i * NF + ecI]!
    for (let k = 0; k < count; k++, e += EF) {
      const type = edgeTypes[edges[e + etI]!]!
      if (type === 'weak' || type === 'shortcut') continue
      const to = edges[e + toI]! / NF
      if (parent[to] !== -1 || to === i) continue
      parent[to] = i
      parentEdge[to] = type === 'element' || type === 'hidden' ? `[${type}]` : String(strings[edges[e + enI]!] ?? edges[e + enI])
    }
  }
  const nameOf = (i: number): string => {
    const type = nodeTypes[nodes[i * NF + tI]!]!
    if (type === 'object' || type === 'closure' || type === 'native') return strings[nodes[i * NF + nI]!]!
    return `(${type})`
  }
  const byConstructor = new Map<string, { count: number; bytes: number }>()
  const byHolder = new Map<string, { count: number; bytes: number }>()
  const add = (m: Map<string, { count: number; bytes: number }>, k: string, bytes: number) => {
    const r = m.get(k) ?? { count: 0, bytes: 0 }; r.count++; r.bytes += bytes; m.set(k, r)
  }
  let totalBytes = 0
  for (let i = 0; i < n; i++) {
    const size = nodes[i * NF + sI]!
    totalBytes += size
    const name = nameOf(i)
    add(byConstructor, name, size)
    // compiled code is warm-up, not users: it gets one row of its own
    if (name === '(code)') { add(byHolder, name, size); continue }
    // up to the nearest named class instance (or closure), remembering the edge we came in by
    let at = i, via = '', holder = name
    for (let step = 0; step < MAX_WALK; step++) {
      const p = parent[at]!
      if (p < 0) break
      via = parentEdge[at]!
      at = p
      const type = nodeTypes[nodes[p * NF + tI]!]!
      const pn = nameOf(p)
      if ((type === 'object' || type === 'closure') && !ANONYMOUS.has(pn) && !pn.startsWith('(')) { holder = `${pn}.${via}`; break }
      holder = `${pn}.${via} (walk ended)`
    }
    add(byHolder, holder, size)
  }
  return { totalBytes, byConstructor, byHolder }
}

/** What grew from `a` to `b`, largest first, with bytes per user for `users` users added between them. */
export function diffSnapshots(a: SnapshotSummary, b: SnapshotSummary, users: number, top = 25): { totalKbDelta: number; byConstructor: SnapshotDiffRow[]; byHolder: SnapshotDiffRow[] } {
  const rows = (x: ReadonlyMap<string, { count: number; bytes: number }>, y: ReadonlyMap<string, { count: number; bytes: number }>) =>
    [...new Set([...x.keys(), ...y.keys()])].map(name => {
      const before = x.get(name) ?? { count: 0, bytes: 0 }, after = y.get(name) ?? { count: 0, bytes: 0 }
      const delta = after.bytes - before.bytes
      return { name, countDelta: after.count - before.count, kbDelta: Math.round(delta / 1024), bytesPerUser: Math.round(delta / Math.max(1, users)) }
    }).sort((p, q) => q.kbDelta - p.kbDelta).slice(0, top)
  return { totalKbDelta: Math.round((b.totalBytes - a.totalBytes) / 1024), byConstructor: rows(a.byConstructor, b.byConstructor), byHolder: rows(a.byHolder, b.byHolder) }
}
