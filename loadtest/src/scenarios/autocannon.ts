/**
 * What the request-capacity scenarios (api.ts, activity-storm.ts) share: autocannon against the
 * hub's own port (as the JupyterHub reference figures were taken) and the proxy's API, with the
 * step's users created first through the REST API.
 */
import autocannon from 'autocannon'
import { SimulatedUser } from '../simulated-user.js'
import type { StepContext, AutocannonSummary } from '../step.js'

/** One endpoint under load: its report key, the server, and the next request (called per request). */
export interface Case {
  readonly key: string
  readonly url: string
  readonly request: () => { method: 'GET' | 'POST'; path: string; body?: string; headers: Record<string, string> }
}

async function createUsers(hubUrl: string, token: string, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 500) {
    const res = await fetch(`${hubUrl}/hub/api/users`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ usernames: names.slice(i, i + 500) }) })
    const text = await res.text()
    if (res.status !== 201 && res.status !== 409) throw new Error(`POST /hub/api/users: ${res.status} ${text.slice(0, 200)}`)
  }
}

/** Load one endpoint for `durationS` seconds with the configured connections. */
export async function cannon(ctx: StepContext, c: Case, durationS: number): Promise<AutocannonSummary> {
  const r = await autocannon({ url: c.url, connections: ctx.config.connections, duration: durationS, requests: [{ setupRequest: req => ({ ...req, ...c.request() }) }] })
  return {
    url: c.url, connections: ctx.config.connections, durationS, requests: r.requests.total, rps: Math.round(r.requests.average),
    p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
  }
}

/** The step's users, created through the API, and an admin token for them (fleethub and JupyterHub alike). */
export async function prepare(ctx: StepContext): Promise<{ hubUrl: string; token: string; names: string[] }> {
  const { target } = ctx
  if (!target.hubUrl) throw new Error(`${ctx.config.scenario} needs --target fleethub`)
  const admin = `${ctx.namePrefix}admin`
  // the admin user must exist (and be an admin) before a token is minted for it: log in once
  const u = new SimulatedUser({ base: target.publicUrl, name: admin, password: target.password, leave: 'abandon', workUntil: 0, recorder: ctx.recorder })
  await u.login()
  const token = await target.adminToken(admin)
  const names = Array.from({ length: ctx.users }, (_, i) => `${ctx.namePrefix}${i}`)
  await createUsers(target.hubUrl, token, names)
  return { hubUrl: target.hubUrl, token, names }
}

/** Keep one endpoint's figures in the step: its summary, its request count and its failures. */
export function record(ctx: StepContext, key: string, s: AutocannonSummary): void {
  ctx.autocannon[key] = s
  ctx.recorder.count(`requests:${key}`, s.requests)
  if (s.non2xx > 0) ctx.recorder.count(`error:non2xx ${key}`, s.non2xx)
  if (s.errors > 0) ctx.recorder.count(`error:network ${key}`, s.errors)
}
