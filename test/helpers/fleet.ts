/**
 * Two or more hubs on one database (issue #14): a proxy they share, a second hub joining the
 * first one's database, the fleet's metrics read the way Prometheus reads them, and a way to cut
 * a hub's dedicated connections from the database side.
 */
import { sql } from 'kysely'
import type { Db } from '../../hub/src/db.js'
import { createLogger } from '../../core/src/log.js'
import { ProxyProcess } from '../../hub/src/proxy/proxy-process.js'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { connectionName, type FleetOptions } from '../../hub/src/fleet/fleet.js'
import { createInstantSpawner } from './instant-spawner.js'
import { startTestHub, type TestHub } from './hub.js'

interface T { teardown(fn: () => unknown): void }

export const FLEET_PROXY_TOKEN = 'fleet-proxy-token-0123456789abcdef'

/** A proxy no hub owns (a Deployment of its own in production), on ephemeral ports. */
export async function startSharedProxy(t: T): Promise<{ apiUrl: string; url: string }> {
  const proxy = new ProxyProcess({ ip: '127.0.0.1', port: 0, apiIp: '127.0.0.1', apiPort: 0, errorTarget: 'http://127.0.0.1:9/hub/error',
    authToken: FLEET_PROXY_TOKEN, logLevel: 'error', log: createLogger('silent') })
  const ends = await proxy.start()
  t.teardown(() => proxy.close())
  return { apiUrl: `http://127.0.0.1:${ends.apiPort}`, url: `http://127.0.0.1:${ends.port}` }
}

/**
 * A hub of the fleet: `--proxy external` on `proxyApiUrl`, the instant spawner, user `admin` as
 * configured admin. The first one gets a fresh database; pass its `databaseUrl` to the next.
 */
export async function startFleetHub(t: T, o: { proxyApiUrl: string; databaseUrl?: string; args?: string[]; fleet?: FleetOptions }): Promise<TestHub> {
  return startTestHub(t, {
    databaseUrl: o.databaseUrl, fleet: o.fleet, spawner: () => createInstantSpawner(), env: { CONFIGPROXY_AUTH_TOKEN: FLEET_PROXY_TOKEN },
    args: ['--proxy', 'external', '--proxy-api-url', o.proxyApiUrl, '--admin-users', 'admin', ...(o.args ?? [])],
  })
}

/** A user (created if missing) and a fresh API token of theirs. */
export async function userToken(db: Db, name: string, o: { admin?: boolean } = {}): Promise<{ userId: string; token: string; tokenId: string }> {
  const row = await db.insertInto('users').values({ name, admin: o.admin ?? false })
    .onConflict(oc => oc.column('name').doUpdateSet({ name })).returning('id').executeTakeFirstOrThrow()
  const { token, id } = await createToken(db, { kind: 'api', userId: row.id, scopes: ['inherit'] })
  return { userId: row.id, token, tokenId: id }
}

/** `fetch` against a hub with `Authorization: token …`. */
export function asToken(hub: TestHub, token: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${hub.hubUrl}${path}`, { ...init, redirect: 'manual', headers: { ...init.headers as Record<string, string>, authorization: `token ${token}` } })
}

/** The fleet's samples from a hub's /hub/metrics: `name{labels}` -> value, the `hub` label left out. */
export async function fleetMetrics(hub: TestHub, adminToken: string): Promise<Map<string, number>> {
  const res = await asToken(hub, adminToken, '/hub/metrics')
  if (res.status !== 200) throw new Error(`/hub/metrics answered ${res.status}`)
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    const m = /^(fleethub_(?:lease|listen|hub|notifications)\w*)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const labels = (m[2] ?? '').split(',').filter(l => l && !l.startsWith('hub=')).join(',')
    out.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]))
  }
  return out
}

/** End a hub's dedicated connection from the database side (what an outage or an operator does); returns how many ended. */
export async function cutConnection(db: Db, hub: TestHub, role: 'listen' | 'leases'): Promise<number> {
  const { rows } = await sql<{ pid: number }>`select pid, pg_terminate_backend(pid) as ok from pg_stat_activity
    where application_name = ${connectionName(role, hub.fleet.hubId)}`.execute(db)
  return rows.length
}

/** Poll `check` every `everyMs` until it is true; the milliseconds that took, or -1 after `limitMs`. */
export async function msUntil(check: () => Promise<boolean> | boolean, limitMs: number, everyMs = 20): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await check()) return Date.now() - start
    if (Date.now() - start > limitMs) return -1
    await new Promise(r => setTimeout(r, everyMs))
  }
}

/** A spawn progress event as the event stream sends it. */
export type ProgressEvent = { progress: number; message: string; ready?: true; failed?: true; url?: string }

/** Read an event stream to its end (or `limitMs`); returns the events. */
export async function readProgress(res: Response, limitMs = 30_000): Promise<ProgressEvent[]> {
  const events: ProgressEvent[] = []
  const reader = res.body!.getReader()
  const timer = setTimeout(() => { void reader.cancel() }, limitMs)
  let buf = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buf += Buffer.from(value).toString()
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, i)
        buf = buf.slice(i + 2)
        if (chunk.startsWith('data: ')) events.push(JSON.parse(chunk.slice(6)) as ProgressEvent)
      }
    }
  } finally {
    clearTimeout(timer)
  }
  return events
}
