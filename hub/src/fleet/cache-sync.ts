/**
 * Fleet-wide cache invalidation (issue #14): every invalidation a hub makes of its identity cache
 * (RequestAuth) or its activity targets (ActivityBuffer) is published on CACHE_CHANNEL, and every
 * other hub applies it on receipt. A revoked token, a logout, a deleted user or a removed admin
 * right therefore stops working on every hub within a second: the notification takes
 * milliseconds, and a hub whose listening connection is not proved live serves no cached identity
 * at all (RequestAuth's `cacheUsable`, fed by the bus's `fresh()`).
 *
 * Wire format, one JSON object per NOTIFY (packed under Postgres' 8000-byte limit):
 *   {"from": "<hub id>", "events": [{"auth": {"userId": "42"}}, {"auth": "all"}, {"activity": "alice"}]}
 * `auth` carries RequestAuth's InvalidateBy (or "all"); `activity` a user name whose cached target
 * goes. A hub ignores its own messages: it applied them before publishing.
 *
 * Published after the change commits, from the hub that made it. A hub that dies between its
 * commit and its publish leaves other hubs' entries to their TTL (5 s for identities).
 */
import type { Logger } from '../../../core/src/log.js'
import type { InvalidateBy } from '../auth/request-auth.js'
import { MAX_PAYLOAD_BYTES, type NotifyBus } from './notify-bus.js'

export const CACHE_CHANNEL = 'fleethub_cache'

/** What this needs from RequestAuth. */
export interface IdentityCache {
  onInvalidate(listener: (by: InvalidateBy | 'all') => void): void
  drop(by: InvalidateBy): void
  dropAll(): void
}

/** What this needs from ActivityBuffer. */
export interface TargetCache {
  onForget(listener: (userName: string) => void): void
  drop(userName: string): void
  dropAll(): void
}

type CacheEvent = { auth: InvalidateBy | 'all' } | { activity: string }

/** JSON-encoded events into as few payloads as fit under the NOTIFY limit. */
export function packEvents(from: string, events: readonly string[]): string[] {
  const head = `{"from":${JSON.stringify(from)},"events":[`
  const out: string[] = []
  let parts: string[] = []
  let bytes = Buffer.byteLength(head) + 2
  for (const e of events) {
    const size = Buffer.byteLength(e) + 1
    if (parts.length > 0 && bytes + size > MAX_PAYLOAD_BYTES) {
      out.push(`${head}${parts.join(',')}]}`)
      parts = []
      bytes = Buffer.byteLength(head) + 2
    }
    parts.push(e)
    bytes += size
  }
  if (parts.length > 0) out.push(`${head}${parts.join(',')}]}`)
  return out
}

/** Publish this hub's invalidations and apply the other hubs'. */
export function syncCaches(o: { bus: NotifyBus; hubId: string; log: Logger; auth: IdentityCache; activity: TargetCache }): void {
  const log = o.log.child({ component: 'cache-sync' })
  let pending = new Set<string>() // JSON events: the same invalidation twice in one turn goes once
  let allAuth = false
  let scheduled = false

  const flush = () => {
    scheduled = false
    const events = [...pending].filter(e => !(allAuth && e.startsWith('{"auth":')))
    if (allAuth) events.push('{"auth":"all"}')
    pending = new Set()
    allAuth = false
    for (const payload of packEvents(o.hubId, events)) o.bus.publish(CACHE_CHANNEL, payload)
  }
  const queue = (e: CacheEvent) => {
    if ('auth' in e && e.auth === 'all') allAuth = true
    else pending.add(JSON.stringify(e))
    if (!scheduled) { scheduled = true; queueMicrotask(flush) }
  }

  o.auth.onInvalidate(by => queue({ auth: by }))
  o.activity.onForget(name => queue({ activity: name }))

  const apply = (e: CacheEvent) => {
    if ('auth' in e) {
      if (e.auth === 'all') o.auth.dropAll()
      else if (e.auth && typeof e.auth === 'object') o.auth.drop(e.auth)
    } else if (typeof e.activity === 'string') {
      o.activity.drop(e.activity)
    }
  }

  o.bus.subscribe(CACHE_CHANNEL, {
    message(payload) {
      let msg: { from?: unknown; events?: unknown }
      try { msg = JSON.parse(payload) as typeof msg } catch { return void log.warn({ bytes: payload.length }, 'unreadable cache notification') }
      if (msg.from === o.hubId || !Array.isArray(msg.events)) return
      for (const e of msg.events as CacheEvent[]) if (e && typeof e === 'object') apply(e)
    },
    resync() {
      o.auth.dropAll()
      o.activity.dropAll()
    },
  })
}
