/**
 * A flamegraph from a V8 `.cpuprofile` (node --cpu-prof): one self-contained HTML page with an SVG
 * (root at the bottom, width = time on CPU including callees, hover for the frame's time) and a
 * table of the frames with the most self time. The fallback when 0x cannot turn a long run's tick
 * log into its own flamegraph in time: --cpu-prof samples are small and need no post-processing.
 */
import { escapeHtml as escapeXml } from '../../hub/src/pages/html.js'

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>
  samples: number[]
  timeDeltas: number[]
}

interface Frame { name: string; where: string; selfMs: number; totalMs: number; children: Frame[] }

const ROW = 16
const WIDTH = 1200
const MIN_WIDTH_PX = 0.3

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'node_modules/').replace(/.*\/dist\//, 'dist/')
}

/** The call tree with self and total milliseconds per node. */
export function callTree(profile: CpuProfile): Frame {
  const selfUs = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0))
  }
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const childIds = new Set(profile.nodes.flatMap(n => n.children ?? []))
  const root = profile.nodes.find(n => !childIds.has(n.id))
  if (!root) throw new Error('a .cpuprofile without a root node')
  const build = (id: number, depth: number): Frame => {
    const n = byId.get(id)!
    const children = depth > 400 ? [] : (n.children ?? []).map(c => build(c, depth + 1))
    const self = (selfUs.get(id) ?? 0) / 1000
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : ''
    return { name: n.callFrame.functionName || '(anonymous)', where, selfMs: self, totalMs: self + children.reduce((a, c) => a + c.totalMs, 0), children }
  }
  return build(root.id, 0)
}

function colour(f: Frame): string {
  if (f.name.startsWith('(')) return '#c8c8c8'
  if (f.where.startsWith('node:') || f.where === '') return '#e8a76b'
  if (f.where.startsWith('node_modules/')) return '#e3cf6d'
  return '#7fb7e6'
}

/** The HTML page: the flame chart and the top self-time frames. */
export function flamegraphHtml(profile: CpuProfile, title: string): string {
  const root = callTree(profile)
  const total = root.totalMs || 1
  const rects: string[] = []
  let maxDepth = 0
  const place = (f: Frame, x: number, depth: number) => {
    const w = (f.totalMs / total) * WIDTH
    if (w < MIN_WIDTH_PX) return
    maxDepth = Math.max(maxDepth, depth)
    rects.push(`<g><title>${escapeXml(`${f.name} ${f.where} — ${f.totalMs.toFixed(0)} ms (${((100 * f.totalMs) / total).toFixed(1)}%), self ${f.selfMs.toFixed(0)} ms`)}</title>`
      + `<rect x="${x.toFixed(1)}" y="DEPTH${depth}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${colour(f)}"/>`
      + (w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="TEXT${depth}" font-size="11">${escapeXml(f.name.slice(0, Math.floor(w / 7)))}</text>` : '') + '</g>')
    let cx = x
    for (const c of [...f.children].sort((a, b) => a.name.localeCompare(b.name))) { place(c, cx, depth + 1); cx += (c.totalMs / total) * WIDTH }
  }
  place(root, 0, 0)
  const height = (maxDepth + 1) * ROW
  // root at the bottom: depth d is drawn at height - (d + 1) rows
  const svgBody = rects.join('\n').replace(/y="DEPTH(\d+)"/g, (_, d) => `y="${height - (Number(d) + 1) * ROW}"`)
    .replace(/y="TEXT(\d+)"/g, (_, d) => `y="${height - (Number(d) + 1) * ROW + 11}"`)
  const self = new Map<string, number>()
  const walk = (f: Frame) => { const k = `${f.name} ${f.where}`; self.set(k, (self.get(k) ?? 0) + f.selfMs); f.children.forEach(walk) }
  walk(root)
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)
    .map(([k, ms]) => `<tr><td>${((100 * ms) / total).toFixed(1)}%</td><td>${ms.toFixed(0)}</td><td><code>${escapeXml(k)}</code></td></tr>`).join('\n')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1rem}svg text{font-family:monospace;pointer-events:none}rect:hover{stroke:#000}td{padding:0 .6rem}</style></head>
<body><h1>${escapeXml(title)}</h1>
<p>${(total / 1000).toFixed(1)} s of samples (node --cpu-prof). Width is time including callees; the root is at the bottom; hover a frame for its time.
Blue: fleethub's code; yellow: node_modules; orange: Node.js internals; grey: V8 (idle, GC, program).</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" role="img" aria-label="flamegraph">${svgBody}</svg>
<h2>Most self time</h2><table><tr><th>share</th><th>ms</th><th>frame</th></tr>${top}</table></body></html>
`
}
