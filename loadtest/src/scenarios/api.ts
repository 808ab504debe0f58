/**
 * The request-capacity scenarios, with autocannon against the hub's own port (as the JupyterHub
 * reference figures were taken) and the proxy's API:
 * - `api`: user read, activity report, route list, token check, each for the step's duration.
 * - `activity-storm`: activity reports for `users` distinct users as fast as the connections allow
 *   (the intake path N servers hit when their report interval is shortened).
 */
import autocannon from 'autocannon'
import { SimulatedUser } from '../simulated-user.js'
import type { StepContext, AutocannonSummary } from '../step.js'

interface Case {
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

async function cannon(ctx: StepContext, c: Case, durationS: number): Promise<AutocannonSummary> {
  const r = await autocannon({ url: c.url, connections: ctx.config.connections, duration: durationS, requests: [{ setupRequest: req => ({ ...req, ...c.request() }) }] })
  return {
    url: c.url, connections: ctx.config.connections, durationS, requests: r.requests.total, rps: Math.round(r.requests.average),
    p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
  }
}

async function prepare(ctx: StepContext): Promise<{ hubUrl: string; token: string; names: string[] }> {
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

function record(ctx: StepContext, key: string, s: AutocannonSummary): void {
  ctx.autocannon[key] = s
  ctx.recorder.count(`requests:${key}`, s.requests)
  if (s.non2xx > 0) ctx.recorder.count(`error:non2xx ${key}`, s.non2xx)
  if (s.errors > 0) ctx.recorder.count(`error:network ${key}`, s.errors)
}

export async function runApiStep(ctx: StepContext): Promise<void> {
  const { hubUrl, token, names } = await prepare(ctx)
  const auth = { authorization: `token ${token}` }
  let n = 0
  // every user in turn, so a short run still touches each one
  const pick = () => names[n++ % names.length]!
  const cases: Case[] = [
    { key: 'GET /hub/api/users/{name}', url: hubUrl, request: () => ({ method: 'GET', path: `/hub/api/users/${pick()}`, headers: auth }) },
    { key: 'POST /hub/api/users/{name}/activity', url: hubUrl, request: () => ({ method: 'POST', path: `/hub/api/users/${pick()}/activity`, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ last_activity: new Date().toISOString() }) }) },
    { key: 'GET /hub/api/user (token check)', url: hubUrl, request: () => ({ method: 'GET', path: '/hub/api/user', headers: auth }) },
  ]
  if (ctx.target.proxyApiUrl && ctx.target.proxyAuthToken) {
    const proxyAuth = { authorization: `token ${ctx.target.proxyAuthToken}` }
    cases.push({ key: 'GET /api/routes (proxy)', url: ctx.target.proxyApiUrl, request: () => ({ method: 'GET', path: '/api/routes', headers: proxyAuth }) })
  }
  const each = Math.max(1, Math.round(ctx.config.durationMs / 1000 / cases.length))
  for (const c of cases) record(ctx, c.key, await cannon(ctx, c, each))
}

export async function runActivityStormStep(ctx: StepContext): Promise<void> {
  const { hubUrl, token, names } = await prepare(ctx)
  const headers = { authorization: `token ${token}`, 'content-type': 'application/json' }
  let i = 0
  const c: Case = {
    key: 'POST /hub/api/users/{name}/activity', url: hubUrl,
    // every user in turn, as N servers reporting on a short interval would
    request: () => ({ method: 'POST', path: `/hub/api/users/${names[i++ % names.length]}/activity`, headers, body: JSON.stringify({ last_activity: new Date().toISOString() }) }),
  }
  record(ctx, c.key, await cannon(ctx, c, Math.max(1, Math.round(ctx.config.durationMs / 1000))))
}
