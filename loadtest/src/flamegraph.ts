/**
 * A flamegraph from a V8 `.cpuprofile` (node --cpu-prof): one self-contained HTML page with an SVG
 * of the busy time (root at the bottom, width = time including callees, hover for the frame's
 * time, click to zoom), tables of the frames with the most self time and of fleethub's own frames
 * with the most total time, and the same figures as JSON (`#profile-summary`) for scripts and tests.
 * Idle samples are counted but not drawn, so the chart shows what the process was busy with. Busy
 * time is wall time between samples that were not idle: on a loaded machine it includes waiting for
 * a core, so it can exceed the CPU time the process was given (the report's CPU % says that one).
 * Pure: where a frame's code lives is asked of `locate` (hub-profile.ts maps it to the repository).
 */
import { escapeHtml as escapeXml } from '../../core/src/html.js'

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number }; children?: number[] }>
  /** Microseconds on the monotonic clock (the same clock as process.hrtime in any process of the machine). */
  startTime?: number
  endTime?: number
  samples: number[]
  timeDeltas: number[]
}

/** Where a frame's code is, as a reader wants it: e.g. `hub/src/app.ts:12`, `node_modules/pg/lib/client.js:9`, `node:net:300`. */
export type Locate = (url: string, line0: number, column0: number) => string

/** Only the samples taken in this window count (monotonic microseconds, as the profile's own times). */
export interface ProfileWindow { readonly fromUs: number; readonly toUs: number }

export interface FrameFigure { readonly frame: string; readonly ms: number; readonly share: number }

/** What the flamegraph shows, in numbers. `share` is of the busy time (idle left out). */
export interface ProfileSummary {
  /** Samples in the window, idle ones included. */
  readonly samples: number
  readonly idleSamples: number
  readonly windowS: number
  /** Median time between samples. */
  readonly intervalUs: number
  /** Time not idle (wall time, see above). */
  readonly busyS: number
  readonly topSelf: FrameFigure[]
  /** fleethub's own frames (not node_modules, not Node.js), by total time including callees. */
  readonly topOwn: FrameFigure[]
}

interface Frame { name: string; where: string; selfMs: number; totalMs: number; children: Frame[] }

type Kind = 'v8' | 'node' | 'deps' | 'own'

const ROW = 16
const WIDTH = 1200
const TOP = 25
/** A frame narrower than this share of the chart is left out (tried in turn until the page fits MAX_BYTES). */
const MIN_SHARES = [0.00005, 0.0002, 0.001]
const MAX_BYTES = 2_000_000

/** Without a locator: the URL cut to what follows node_modules/ or dist/ (the machine's own prefix left out). */
export const shortLocation: Locate = (url, line0) => url === '' ? '' : `${url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'node_modules/').replace(/.*\/dist\//, 'dist/')}:${line0 + 1}`

function kindOf(f: Pick<Frame, 'name' | 'where'>): Kind {
  if (f.name.startsWith('(') || f.where === '') return 'v8'
  if (f.where.startsWith('node:')) return 'node'
  if (f.where.includes('node_modules/')) return 'deps'
  return 'own'
}

/** Each sample's node and the time it stands for, in the window (time deltas are microseconds since the previous sample). */
export function windowedSamples(profile: CpuProfile, window?: ProfileWindow): { selfUs: Map<number, number>; deltas: number[]; idleSamples: number } {
  const idleIds = new Set(profile.nodes.filter(n => n.callFrame.functionName === '(idle)').map(n => n.id))
  const selfUs = new Map<number, number>()
  const deltas: number[] = []
  let t = profile.startTime ?? 0, idleSamples = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    t += delta
    if (window && (t < window.fromUs || t > window.toUs)) continue
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, delta))
    deltas.push(delta)
    if (idleIds.has(id)) idleSamples++
  }
  return { selfUs, deltas, idleSamples }
}

/** The call tree with self and total milliseconds per node (samples outside `window` left out). */
export function callTree(profile: CpuProfile, options: { window?: ProfileWindow; locate?: Locate } = {}): Frame {
  const locate = options.locate ?? shortLocation
  const { selfUs } = windowedSamples(profile, options.window)
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const childIds = new Set(profile.nodes.flatMap(n => n.children ?? []))
  const root = profile.nodes.find(n => !childIds.has(n.id))
  if (!root) throw new Error('a .cpuprofile without a root node')
  const build = (id: number, depth: number): Frame => {
    const n = byId.get(id)!
    const children = depth > 400 ? [] : (n.children ?? []).map(c => build(c, depth + 1)).filter(c => c.totalMs > 0)
    const self = (selfUs.get(id) ?? 0) / 1000
    const where = n.callFrame.url ? locate(n.callFrame.url, n.callFrame.lineNumber, n.callFrame.columnNumber ?? 0) : ''
    return { name: n.callFrame.functionName || '(anonymous)', where, selfMs: self, totalMs: self + children.reduce((a, c) => a + c.totalMs, 0), children }
  }
  return build(root.id, 0)
}

const key = (f: Frame) => f.where ? `${f.name} ${f.where}` : f.name
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d

/** The figures of `root` (a callTree): samples, idle, busy time, and the top frames. */
export function summarize(profile: CpuProfile, root: Frame, window?: ProfileWindow): ProfileSummary {
  const { deltas, idleSamples } = windowedSamples(profile, window)
  const busyMs = busyTime(root)
  const self = new Map<string, number>()
  const own = new Map<string, number>()
  // a frame's total counts once per stack, even when it recurses
  const walk = (f: Frame, onStack: Set<string>) => {
    const k = key(f)
    if (f.name !== '(idle)' && f !== root) self.set(k, (self.get(k) ?? 0) + f.selfMs)
    const counted = kindOf(f) === 'own' && !onStack.has(k)
    if (counted) { own.set(k, (own.get(k) ?? 0) + f.totalMs); onStack.add(k) }
    for (const c of f.children) walk(c, onStack)
    if (counted) onStack.delete(k)
  }
  walk(root, new Set())
  const top = (m: Map<string, number>): FrameFigure[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP)
    .map(([frame, ms]) => ({ frame, ms: round(ms), share: busyMs > 0 ? round(ms / busyMs, 4) : 0 }))
  const sorted = [...deltas].sort((a, b) => a - b)
  const windowUs = window ? window.toUs - window.fromUs : (profile.endTime ?? 0) - (profile.startTime ?? 0)
  return {
    samples: deltas.length, idleSamples, windowS: round(Math.max(0, windowUs) / 1e6), intervalUs: sorted[sorted.length >> 1] ?? 0,
    busyS: round(busyMs / 1000, 2), topSelf: top(self), topOwn: top(own),
  }
}

/** The root's time without its idle child. */
function busyTime(root: Frame): number {
  return root.totalMs - root.children.filter(c => c.name === '(idle)').reduce((a, c) => a + c.totalMs, 0)
}

const COLOURS: Record<Kind, string> = { v8: '#c8c8c8', node: '#e8a76b', deps: '#e3cf6d', own: '#7fb7e6' }

/** The SVG's frames: `<g>` per frame with its place in data attributes (the zoom script re-lays them out). */
function svgFrames(root: Frame, total: number, minShare: number): { body: string; height: number } {
  const rects: string[] = []
  let maxDepth = 0
  const place = (f: Frame, x: number, depth: number) => {
    const ms = f === root ? total : f.totalMs // the root without its idle child
    if (ms / total < minShare || f.name === '(idle)') return
    const w = (ms / total) * WIDTH
    maxDepth = Math.max(maxDepth, depth)
    const label = f === root ? `busy: ${(total / 1000).toFixed(1)} s` : f.name
    rects.push(`<g data-x="${x.toFixed(3)}" data-w="${w.toFixed(3)}" data-d="${depth}" data-n="${escapeXml(label)}"><title>${escapeXml(`${f === root ? label : key(f)} — ${ms.toFixed(0)} ms (${((100 * ms) / total).toFixed(1)}%), self ${f.selfMs.toFixed(0)} ms`)}</title>`
      + `<rect x="${x.toFixed(1)}" y="DEPTH${depth}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${COLOURS[kindOf(f)]}"/>`
      + (w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="TEXT${depth}">${escapeXml(label.slice(0, Math.floor(w / 7)))}</text>` : '') + '</g>')
    let cx = x
    for (const c of [...f.children].sort((a, b) => a.name.localeCompare(b.name))) {
      if (c.name === '(idle)') continue
      place(c, cx, depth + 1)
      cx += (c.totalMs / total) * WIDTH
    }
  }
  place(root, 0, 0)
  const height = (maxDepth + 1) * ROW
  // root at the bottom: depth d is drawn at height - (d + 1) rows
  const body = rects.join('\n').replace(/y="DEPTH(\d+)"/g, (_, d) => `y="${height - (Number(d) + 1) * ROW}"`)
    .replace(/y="TEXT(\d+)"/g, (_, d) => `y="${height - (Number(d) + 1) * ROW + 11}"`)
  return { body, height }
}

// Click a frame to make it the chart's width (its callers stay below it, full width); click the root to reset.
const ZOOM_SCRIPT = `(() => {
  const W = ${WIDTH}, svg = document.getElementById('flame'), gs = [...svg.querySelectorAll('g[data-w]')]
  const NS = 'http://www.w3.org/2000/svg'
  function zoom(x0, w0, d0) {
    for (const g of gs) {
      const x = +g.dataset.x, w = +g.dataset.w, d = +g.dataset.d
      const inside = x >= x0 - 1e-6 && x + w <= x0 + w0 + 1e-6, around = x <= x0 + 1e-6 && x + w >= x0 + w0 - 1e-6
      if (d < d0 ? !around : !inside) { g.style.display = 'none'; continue }
      const nx = d < d0 ? 0 : (x - x0) * W / w0, nw = d < d0 ? W : w * W / w0
      g.style.display = ''
      const r = g.querySelector('rect'); r.setAttribute('x', nx); r.setAttribute('width', nw)
      let t = g.querySelector('text')
      if (nw > 40 && !t) { t = document.createElementNS(NS, 'text'); t.setAttribute('y', +r.getAttribute('y') + 11); g.appendChild(t) }
      if (t) { t.setAttribute('x', nx + 3); t.textContent = nw > 40 ? g.dataset.n.slice(0, Math.floor(nw / 7)) : '' }
    }
  }
  svg.addEventListener('click', e => { const g = e.target.closest('g[data-w]'); if (g) zoom(+g.dataset.x, +g.dataset.w, +g.dataset.d) })
})()`

function table(rows: FrameFigure[], what: string): string {
  return `<table><tr><th>share of busy time</th><th>ms</th><th>${what}</th></tr>${rows.map(r =>
    `<tr><td>${(100 * r.share).toFixed(1)}%</td><td>${r.ms.toFixed(0)}</td><td><code>${escapeXml(r.frame)}</code></td></tr>`).join('\n')}</table>`
}

function page(title: string, s: ProfileSummary, svg: { body: string; height: number }, note: string): string {
  const idlePct = s.samples > 0 ? (100 * s.idleSamples / s.samples).toFixed(0) : '0'
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1rem}svg text{font:11px monospace;pointer-events:none}rect{cursor:pointer}rect:hover{stroke:#000}td{padding:0 .6rem}</style></head>
<body><h1>${escapeXml(title)}</h1>
<p>${s.samples} samples (node --cpu-prof, one every ${(s.intervalUs / 1000).toFixed(1)} ms) over ${s.windowS} s, ${idlePct}% of them idle: <b>${s.busyS} s busy</b>, drawn below (wall time between samples: on a loaded machine it includes waiting for a core). ${escapeXml(note)}
Width is busy time including callees; the root is at the bottom; hover a frame for its time, click it to zoom, click the root to reset.
Blue: fleethub's code; yellow: node_modules; orange: Node.js internals; grey: V8 (program, GC, native).</p>
<svg id="flame" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${svg.height}" width="100%" role="img" aria-label="flamegraph">${svg.body}</svg>
<h2>Most self time</h2>${table(s.topSelf, 'frame')}
<h2>fleethub's code by total time (callees included)</h2>${table(s.topOwn, 'frame')}
<script type="application/json" id="profile-summary">${JSON.stringify(s).replace(/</g, '\\u003c')}</script>
<script>${ZOOM_SCRIPT}</script></body></html>
`
}

/** The HTML page and its figures. The narrowest frames are left out as needed to keep the page under ~2 MB. */
export function renderFlamegraph(profile: CpuProfile, title: string, options: { window?: ProfileWindow; locate?: Locate; note?: string } = {}): { html: string; summary: ProfileSummary } {
  const root = callTree(profile, options)
  const summary = summarize(profile, root, options.window)
  const total = Math.max(1, busyTime(root))
  let html = ''
  for (const minShare of MIN_SHARES) {
    html = page(title, summary, svgFrames(root, total, minShare), options.note ?? '')
    if (html.length <= MAX_BYTES) break
  }
  return { html, summary }
}

/** The HTML page alone. */
export function flamegraphHtml(profile: CpuProfile, title: string): string {
  return renderFlamegraph(profile, title).html
}
