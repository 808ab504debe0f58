/**
 * A small line chart as inline SVG (no scripts, no external files), for the HTML report.
 * Each series is a list of [x, y] points; axes are linear from 0 to the largest value.
 */
import { escapeHtml as esc } from '../../core/src/html.js'

export interface ChartSeries {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf']
const W = 720, H = 260, L = 56, R = 150, T = 28, B = 34

/** A "nice" axis maximum (1, 2, 5 × 10^k) at or above `v`. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

export function lineChart(title: string, yLabel: string, series: readonly ChartSeries[], xLabel = 'seconds'): string {
  const all = series.flatMap(s => s.points)
  const xMax = niceMax(Math.max(1, ...all.map(p => p[0])))
  const yMax = niceMax(Math.max(0, ...all.map(p => p[1])))
  const x = (v: number) => L + (v / xMax) * (W - L - R)
  const y = (v: number) => H - B - (v / yMax) * (H - T - B)
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`,
    `<text x="${L}" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`]
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${L - 4}" y="${y(v) + 4}" font-size="10" text-anchor="end">${+v.toPrecision(3)}</text>`)
    const xv = (xMax * i) / 4
    parts.push(`<text x="${x(xv)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${+xv.toPrecision(3)}</text>`)
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 4}" font-size="10" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="12" y="${(T + H - B) / 2}" font-size="10" transform="rotate(-90 12 ${(T + H - B) / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#444"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#444"/>`)
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]
    if (s.points.length > 0) {
      const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`)
    }
    parts.push(`<rect x="${W - R + 10}" y="${T + i * 16}" width="10" height="10" fill="${color}"/>`,
      `<text x="${W - R + 24}" y="${T + i * 16 + 9}" font-size="11">${esc(s.name)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('')
}
