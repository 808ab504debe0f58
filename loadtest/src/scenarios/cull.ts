/**
 * `cull`: N servers go idle with the hub's own culler on (`--cull-timeout`, `--cull-every`), while
 * a share of the users (`--active-share`) keeps working. Answers: how long until every idle server
 * is culled (`phase:cull`: from the user going idle to the hub listing no server), what the sweeps
 * cost (the hub's and Postgres's CPU over the step), and that no active server was culled
 * (`cull:active_culled` must stay 0: each active user's server still running in the hub and
 * answering it through the proxy at the end).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { SimulatedUser, type UserState } from '../simulated-user.js'
import type { StepContext } from '../step.js'
import { probeProxy } from './users.js'
import { DEFAULTS, type Scenario } from './scenario.js'

/** How often the hub's user list is read for servers gone. */
const WATCH_EVERY_MS = 500
const PAGE = 200

/** Users with a server (pending or ready) among those named `<prefix>…`, from the hub's REST API, page by page. */
export async function namesWithServers(hubUrl: string, token: string, prefix: string): Promise<Set<string>> {
  const out = new Set<string>()
  for (let offset = 0, page = 0; page < 1000; page++, offset += PAGE) {
    const res = await fetch(`${hubUrl}/hub/api/users?state=active&name_filter=${encodeURIComponent(prefix)}&limit=${PAGE}&offset=${offset}`,
      { headers: { authorization: `token ${token}` }, signal: AbortSignal.timeout(30_000) })
    if (res.status !== 200) throw new Error(`GET /hub/api/users?state=active: ${res.status} ${(await res.text()).slice(0, 200)}`)
    const body = await res.json() as Array<{ name: string }> | { items: Array<{ name: string }> }
    const items = Array.isArray(body) ? body : body.items
    for (const u of items) out.add(u.name)
    if (items.length < PAGE) break
  }
  return out
}

/** An admin API token for the step (the target's admin user logs in once first, as autocannon.ts's prepare does). */
async function adminToken(ctx: StepContext): Promise<string> {
  const u = new SimulatedUser({ base: ctx.target.publicUrl, name: `${ctx.namePrefix}admin`, password: ctx.target.password, leave: 'abandon', workUntil: 0, recorder: ctx.recorder })
  await u.login()
  return ctx.target.adminToken(`${ctx.namePrefix}admin`)
}

export async function runCullStep(ctx: StepContext): Promise<void> {
  const { config, target, recorder: r, users } = ctx
  if (!target.hubUrl) throw new Error('cull needs --target fleethub')
  const token = await adminToken(ctx)
  const active = Math.min(users - 1, Math.max(users > 1 ? 1 : 0, Math.round(users * config.cull.activeShare)))
  const idleSince = new Map<string, number>()
  // the active ones spread through the arrivals
  const activeIdx = new Set(Array.from({ length: active }, (_, k) => Math.floor((k * users) / active)))
  const activeNames = new Set([...activeIdx].map(i => `${ctx.namePrefix}${i}`))
  let idleSettled = 0
  const t0 = performance.now()
  const deadline = t0 + config.arrivalMs + config.durationMs
  let stop = false
  let done = false
  const probe = probeProxy(target.publicUrl, target.hubUrl, r, () => done)
  const pad = 'x'.repeat(config.messageBytes)
  const visits = Array.from({ length: users }, async (_, i) => {
    await sleep(users === 1 ? 0 : (config.arrivalMs * i) / (users - 1))
    const isActive = activeIdx.has(i)
    const name = `${ctx.namePrefix}${i}`
    const user = new SimulatedUser({
      base: target.publicUrl, name, password: target.password, leave: 'abandon', workUntil: deadline,
      messageIntervalMs: config.messageIntervalMs, httpIntervalMs: config.httpIntervalMs, messageBytes: config.messageBytes,
      spawnTimeoutMs: Math.max(120_000, config.arrivalMs), recorder: r,
      onState: (from: UserState, to: UserState) => ctx.onState(from, to),
    })
    ctx.users_.push(user)
    ctx.onState(undefined, 'waiting')
    await user.run(async () => {
      // one echo proves the server works; then an idle user closes the tab (abandon) and its server idles
      await user.echo(user.websocket!, 0, pad)
      if (!isActive) { idleSince.set(name, performance.now()); return }
      for (let seq = 1; seq < 1_000_000 && !stop; seq++) {
        await sleep(config.messageIntervalMs * (0.5 + Math.random()))
        if (stop) break
        if (user.websocket?.readyState !== 1) { r.count('cull:active_ws_closed'); throw new Error('the websocket closed while working: was the server culled?') }
        await user.echo(user.websocket, seq, pad)
      }
    })
    if (!isActive) idleSettled++ // idle and gone, or failed before going idle
  })
  // watch the hub's list: an idle server gone is culled; an active one gone is the bug this scenario guards against
  const idleTotal = users - active
  const culled = new Set<string>()
  let firstCullAt: number | undefined
  for (let i = 0; i < 1_000_000 && performance.now() < deadline; i++) {
    await sleep(WATCH_EVERY_MS)
    const running = await namesWithServers(target.hubUrl, token, ctx.namePrefix).catch(() => undefined)
    if (!running) continue
    for (const [name, since] of idleSince) {
      if (culled.has(name) || running.has(name)) continue
      culled.add(name)
      firstCullAt ??= performance.now()
      r.record('phase:cull', performance.now() - since)
      r.count('cull:idle_culled')
    }
    if (idleSettled === idleTotal && culled.size === idleSince.size) break
  }
  // from the first server going idle to the last one culled
  if (firstCullAt !== undefined && culled.size === idleSince.size) r.record('phase:cull_all', performance.now() - Math.min(...idleSince.values()))
  if (culled.size < idleSince.size) r.count('cull:idle_not_culled', idleSince.size - culled.size)
  // the verdict on the active servers, while they still work: running in the hub, answering through the proxy
  const running = await namesWithServers(target.hubUrl, token, ctx.namePrefix)
  for (const name of activeNames) {
    if (!running.has(name)) { r.count('cull:active_culled'); r.note('cull:active_culled', `${name}: its server is gone while it was working`) }
  }
  r.count('cull:active_checked', activeNames.size)
  stop = true
  await Promise.all(visits)
  done = true
  await probe
}

export const cull: Scenario<'cull'> = {
  name: 'cull',
  // short enough for CI; a real campus culls after an hour (--cull-timeout 3600s)
  defaults: { ...DEFAULTS, arrival: '10s', duration: '60s' },
  stopsAtBreakingStep: false,
  needs: { culler: true },
  judgeText: 'no failed user, no 5xx, no active server culled, every idle server culled within the step',
  runStep: runCullStep,
  judge(step) {
    const c = step.counts
    const f: Array<{ slo: string; failure: string }> = []
    const failed = Object.entries(c).filter(([k]) => k.startsWith('failed:')).reduce((a, [, n]) => a + n, 0)
    if (failed > 0) f.push({ slo: 'users-failed', failure: `${failed} users failed (${Object.entries(c).filter(([k]) => k.startsWith('failed:')).map(([k, n]) => `${k.slice(7)}=${n}`).join(', ')})` })
    if ((c['cull:active_culled'] ?? 0) > 0) f.push({ slo: 'no-active-culled', failure: `${c['cull:active_culled']} active servers were culled` })
    if ((c['cull:idle_not_culled'] ?? 0) > 0) f.push({ slo: 'idle-culled', failure: `${c['cull:idle_not_culled']} idle servers were not culled within the step` })
    if ((c['error:5xx'] ?? 0) > 0) f.push({ slo: 'no-5xx', failure: `${c['error:5xx']} responses were 5xx` })
    return f
  },
}
