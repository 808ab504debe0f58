/**
 * Spawn progress across the fleet (issue #14): the hub running a spawn publishes each of its
 * progress events on PROGRESS_CHANNEL, and every other hub keeps a mirror of it (a SpawnProgress
 * fed by the notifications), so a user whose spawn runs on hub A watches it from hub B exactly as
 * from A: past events replayed, live ones as they come, the stream ended by ready or failed.
 *
 * Wire format, one JSON object per event (small: messages are cut to MAX_MESSAGE characters):
 *   {"from": "<hub id>", "s": "<server id>", "e": {"progress": 50, "message": "…", "ready"?: true, "failed"?: true, …}}
 * or, for a waiting spawn's place in the fleet-wide line (0 = no longer waiting):
 *   {"from": "<hub id>", "s": "<server id>", "q": 3}
 * A hub ignores its own messages. Notifications are lost while a listening connection is down,
 * so a mirror is a fast path, not the truth: streams that follow a mirror also re-read the
 * server row now and then (servers/progress-stream.ts), and a late subscriber whose hub saw nothing of the
 * spawn follows the row alone.
 */
import type { Logger } from '../../../core/src/log.js'
import type { NotifyBus } from '../fleet/notify-bus.js'
import { SpawnProgress, type ProgressEvent } from './progress.js'

export const PROGRESS_CHANNEL = 'fleethub_progress'
const MAX_MESSAGE = 1000
/** Mirrors kept at most (a class start of thousands; the oldest finished go first). */
const MAX_MIRRORS = 20_000
/** A finished mirror is kept this long for streams that connect late. */
const KEEP_FINISHED_MS = 60_000

export interface ProgressRelay {
  /** Send an event of a spawn this hub runs (or one it failed for a dead hub) to the other hubs. */
  publish(serverId: string, event: ProgressEvent): void
  /** Send the place in line of a spawn this hub runs (fleet-admission.ts); mirrors show it as the owner's records do. */
  publishPosition(serverId: string, position: number): void
  /** The mirror of a spawn another hub runs, once any of its events arrived here. */
  mirror(serverId: string): SpawnProgress | undefined
  close(): void
}

function trimmed(e: ProgressEvent): ProgressEvent {
  const cut = (s: string) => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s)
  const { html_message, ...rest } = e
  return { ...rest, message: cut(e.message), ...(html_message !== undefined && html_message.length <= MAX_MESSAGE ? { html_message } : {}) }
}

export function createProgressRelay(o: { bus: NotifyBus; hubId: string; log: Logger }): ProgressRelay {
  const log = o.log.child({ component: 'progress-relay' })
  const mirrors = new Map<string, SpawnProgress>()
  const timers = new Set<NodeJS.Timeout>()

  const apply = (serverId: string, e: ProgressEvent, create: boolean) => {
    let m = mirrors.get(serverId)
    if (!m || (m.done && !e.ready && !e.failed)) {
      if (!create) return
      // A new spawn of a server whose last one finished: a fresh record.
      if (mirrors.size >= MAX_MIRRORS) mirrors.delete(mirrors.keys().next().value!)
      m = new SpawnProgress()
      m.phase = 'starting'
      mirrors.set(serverId, m)
    }
    if (e.ready || e.failed) {
      m.finish(e as ProgressEvent & ({ ready: true } | { failed: true }))
      const done = m
      const timer = setTimeout(() => { timers.delete(timer); if (mirrors.get(serverId) === done) mirrors.delete(serverId) }, KEEP_FINISHED_MS)
      timer.unref()
      timers.add(timer)
    } else {
      m.emit(e)
    }
  }

  const position = (serverId: string, n: number) => {
    const m = mirrors.get(serverId)
    if (!m || m.done) return
    m.queuePosition = n > 0 ? () => n : undefined
  }

  o.bus.subscribe(PROGRESS_CHANNEL, {
    message(payload) {
      let msg: { from?: unknown; s?: unknown; e?: unknown; q?: unknown }
      try { msg = JSON.parse(payload) as typeof msg } catch { return void log.warn({ bytes: payload.length }, 'unreadable progress notification') }
      if (msg.from === o.hubId || typeof msg.s !== 'string') return
      if (typeof msg.q === 'number') return void position(msg.s, msg.q)
      if (!msg.e || typeof msg.e !== 'object') return
      const e = msg.e as ProgressEvent
      if (typeof e.progress !== 'number' || typeof e.message !== 'string') return
      apply(msg.s, e, true)
    },
    // What was published while disconnected is lost: streams on unfinished mirrors fall back to
    // the server row (servers/progress-stream.ts), so the mirrors need not be dropped.
    resync() {},
  })

  return {
    publish(serverId, event) {
      const e = trimmed(event)
      apply(serverId, e, false) // a failure this hub published for a dead hub ends its own mirror too
      o.bus.publish(PROGRESS_CHANNEL, JSON.stringify({ from: o.hubId, s: serverId, e }))
    },
    publishPosition(serverId, n) {
      o.bus.publish(PROGRESS_CHANNEL, JSON.stringify({ from: o.hubId, s: serverId, q: n }))
    },
    mirror: serverId => mirrors.get(serverId),
    close() {
      for (const t of timers) clearTimeout(t)
      timers.clear()
      mirrors.clear()
    },
  }
}
