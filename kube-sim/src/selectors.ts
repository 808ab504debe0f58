/**
 * Label and field selectors as the Kubernetes API server parses them. Parsed once per request,
 * then applied per object as a plain function (cheap enough for 10k objects per list).
 */

export type Matcher = (obj: any) => boolean

export class SelectorError extends Error {}

/** Split on commas that are not inside `( )`. */
function splitTerms(s: string): string[] {
  const out: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of s) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) { out.push(cur); cur = '' } else cur += ch
  }
  out.push(cur)
  return out.map(x => x.trim()).filter(x => x !== '')
}

const KEY = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/

function labelTerm(term: string): (labels: Record<string, string>) => boolean {
  let m = /^(\S+?)\s+(in|notin)\s+\((.*)\)$/.exec(term)
  if (m !== null) {
    const [, key, op, list] = m
    if (!KEY.test(key)) throw new SelectorError(`invalid label key '${key}'`)
    const values = new Set(list.split(',').map(v => v.trim()))
    return op === 'in'
      ? labels => labels[key] !== undefined && values.has(labels[key])
      : labels => labels[key] === undefined || !values.has(labels[key])
  }
  m = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term)
  if (m !== null) {
    const [, key, op, value] = m
    if (!KEY.test(key)) throw new SelectorError(`invalid label key '${key}'`)
    return op === '!=' ? labels => labels[key] !== value : labels => labels[key] === value
  }
  m = /^(!?)\s*([^!=\s()]+)$/.exec(term)
  if (m !== null) {
    const [, not, key] = m
    if (!KEY.test(key)) throw new SelectorError(`invalid label key '${key}'`)
    return not === '!' ? labels => labels[key] === undefined : labels => labels[key] !== undefined
  }
  throw new SelectorError(`unable to parse requirement: '${term}'`)
}

/** `a=b,c!=d,e in (x,y),f notin (z),g,!h`; empty or undefined matches everything. */
export function parseLabelSelector(selector: string | undefined): Matcher {
  if (selector === undefined || selector.trim() === '') return () => true
  const terms = splitTerms(selector).map(labelTerm)
  return obj => {
    const labels = obj?.metadata?.labels ?? {}
    return terms.every(f => f(labels))
  }
}

function getPath(obj: any, path: string): string | undefined {
  let cur = obj
  for (const part of path.split('.')) {
    if (cur === undefined || cur === null) return undefined
    cur = cur[part]
  }
  return cur === undefined || cur === null ? undefined : String(cur)
}

/** Field selectors supported per resource, as the real API server allows them (subset). */
export const FIELDS: Record<string, ReadonlySet<string>> = {
  pods: new Set(['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase', 'status.podIP']),
  events: new Set(['metadata.name', 'metadata.namespace', 'involvedObject.kind', 'involvedObject.name',
    'involvedObject.namespace', 'involvedObject.uid', 'involvedObject.apiVersion', 'reason', 'type', 'source']),
  persistentvolumeclaims: new Set(['metadata.name', 'metadata.namespace']),
  namespaces: new Set(['metadata.name', 'status.phase']),
  nodes: new Set(['metadata.name']),
}

/** `metadata.name=x,status.phase!=Running`; unknown fields are a 400 like the real API. */
export function parseFieldSelector(selector: string | undefined, resource: string): Matcher {
  if (selector === undefined || selector.trim() === '') return () => true
  const allowed = FIELDS[resource] ?? new Set(['metadata.name', 'metadata.namespace'])
  const terms = splitTerms(selector).map(term => {
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(term)
    if (m === null) throw new SelectorError(`invalid field selector: '${term}'`)
    const [, field, op, value] = m
    if (!allowed.has(field)) throw new SelectorError(`field label not supported: ${field}`)
    const path = field === 'source' ? 'source.component' : field
    return op === '!=' ? (o: any) => (getPath(o, path) ?? '') !== value : (o: any) => (getPath(o, path) ?? '') === value
  })
  return obj => terms.every(f => f(obj))
}
