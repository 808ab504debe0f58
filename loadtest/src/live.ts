/**
 * The operator's view of a running load test: users by state, spawns/s, errors by kind, current
 * p99s and per-process CPU/RSS. On a TTY the block is redrawn in place; otherwise one plain line
 * every few seconds (CI logs stay readable).
 */
import type { Recorder } from './histogram.js'
import type { ResourcePoint } from './resources.js'

export interface LiveSnapshot {
  readonly elapsedS: number
  readonly step: number
  readonly steps: number
  readonly usersTotal: number
  readonly states: Readonly<Record<string, number>>
  readonly recorder: Recorder
  readonly resources: ResourcePoint | undefined
  readonly spawnsPerS: number
}

const P99_KEYS = ['phase:login', 'phase:spawn', 'phase:first_page', 'phase:ws_echo']

export function formatLive(s: LiveSnapshot): string[] {
  const counts = s.recorder.counts()
  const states = Object.entries(s.states).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(' ') || '-'
  const errors = Object.entries(counts).filter(([k]) => k.startsWith('error:') || k.startsWith('failed:'))
    .map(([k, n]) => `${k.replace(/^error:/, '')}=${n}`).join(' ') || 'none'
  const p99 = P99_KEYS.map(k => {
    const h = s.recorder.get(k)
    return h && h.count > 0 ? `${k.slice(6)}=${Math.round(h.percentile(99))}ms` : undefined
  }).filter(Boolean).join(' ') || '-'
  const res = s.resources ? Object.entries(s.resources.procs).filter(([, p]) => p)
    .map(([name, p]) => `${name} ${p!.cpu}% ${Math.round(p!.rssMb)}MB`).join(' | ') : '-'
  return [
    `[${s.elapsedS.toFixed(0)}s] step ${s.step}/${s.steps} users ${s.usersTotal}: ${states}`,
    `  spawns ok ${counts.spawn_ok ?? 0} (${s.spawnsPerS.toFixed(1)}/s) logins ${counts.login_ok ?? 0} 429s ${counts.spawn_429 ?? 0} | p99 ${p99}`,
    `  errors: ${errors}`,
    `  ${res}${s.resources ? ` | loop lag p99 ${s.resources.loopLagP99}ms pg conns ${s.resources.pgConnections ?? '-'}` : ''}`,
  ]
}

export class LiveDisplay {
  readonly #out: NodeJS.WriteStream | NodeJS.WritableStream
  readonly #inPlace: boolean
  readonly #every: number
  #drawn = 0
  #lastAt = 0

  constructor(out: NodeJS.WriteStream | NodeJS.WritableStream, mode: 'auto' | 'tty' | 'lines' | 'off') {
    this.#out = out
    const tty = 'isTTY' in out && out.isTTY === true
    this.#inPlace = mode === 'tty' || (mode === 'auto' && tty)
    this.#every = mode === 'off' ? Infinity : this.#inPlace ? 0 : 5000
  }

  update(s: LiveSnapshot): void {
    const now = performance.now()
    if (now - this.#lastAt < this.#every) return
    this.#lastAt = now
    const lines = formatLive(s)
    if (this.#inPlace) {
      const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : ''
      this.#out.write(up + lines.map(l => `\x1b[2K${l}`).join('\n') + '\n')
      this.#drawn = lines.length
    } else {
      this.#out.write(lines.join('\n') + '\n')
    }
  }

  message(text: string): void {
    if (this.#every === Infinity) return
    this.#drawn = 0
    this.#out.write(text + '\n')
  }
}
