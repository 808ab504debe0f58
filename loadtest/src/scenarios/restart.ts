/**
 * `restart`: N users working (websocket echoes, reopened when an outage drops them), and in the
 * middle the proxy, then the hub, then Postgres are killed and started again, one after another
 * (targets/fleethub.ts restart: SIGKILL for the proxy, which the hub restarts, and for the hub,
 * which is started again with the same ports and database; an immediate shutdown for Postgres).
 * Answers, per outage: the time until every user is served again (`phase:recovery_<process>`:
 * from the kill until each user's session cookie still logs it in, the hub lists its server ready,
 * and the server answers through the proxy), and the sessions and servers lost, which must be
 * zero (`restart:sessions_lost`, `restart:servers_lost`, checked after the last outage).
 * The default spawner is kube-sim: user servers live outside the hub's process tree, as pods do.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { SimulatedUser, type UserState } from '../simulated-user.js'
import type { StepContext } from '../step.js'
import type { RestartComponent } from '../targets/target.js'
import { DEFAULTS, type Scenario } from './scenario.js'

const OUTAGES: readonly RestartComponent[] = ['proxy', 'hub', 'postgres']
/** Give up waiting for a recovery after this long (then the users not served count as lost). */
const RECOVERY_TIMEOUT_MS = 180_000
const CHECK_EVERY_MS = 250

type Check = 'ok' | 'session_lost' | 'server_lost' | 'unreachable'

/**
 * One user's view after an outage: its hub session cookie still authenticates it (`GET /hub/api/user`),
 * the hub lists its default server ready, and the server answers through the proxy.
 */
async function checkUser(user: SimulatedUser): Promise<Check> {
  const name = encodeURIComponent(user.o.name)
  try {
    const me = await user.request('GET', '/hub/api/user', { headers: { referer: `${user.o.base}/hub/home` } }, 10_000)
    if (me.status === 401 || me.status === 403 || (me.status >= 300 && me.status < 400)) return 'session_lost'
    if (me.status !== 200) return 'unreachable'
    const model = JSON.parse(me.body) as { servers?: Record<string, { ready?: boolean }> }
    if (!model.servers?.['']?.ready) return 'server_lost'
    const status = await user.request('GET', `/user/${name}/api/status`, {}, 10_000)
    return status.status === 200 ? 'ok' : 'unreachable'
  } catch { return 'unreachable' }
}

/** Check every user until all are served, or the timeout; the last verdict of each. */
async function waitServed(users: readonly SimulatedUser[], timeoutMs: number): Promise<{ servedAt: number | undefined; verdicts: Map<SimulatedUser, Check> }> {
  const verdicts = new Map<SimulatedUser, Check>()
  const deadline = performance.now() + timeoutMs
  let pending = [...users]
  for (let i = 0; i < 100_000 && pending.length > 0 && performance.now() < deadline; i++) {
    const results = await Promise.all(pending.map(async u => [u, await checkUser(u)] as const))
    for (const [u, v] of results) verdicts.set(u, v)
    pending = results.filter(([, v]) => v !== 'ok').map(([u]) => u)
    if (pending.length > 0) await sleep(CHECK_EVERY_MS)
  }
  return { servedAt: pending.length === 0 ? performance.now() : undefined, verdicts }
}

/** Echo every message interval, reopening the websocket when an outage closed it. */
async function workThroughOutages(user: SimulatedUser, until: () => boolean, intervalMs: number, pad: string): Promise<void> {
  for (let seq = 1; seq < 1_000_000 && !until(); seq++) {
    const ws = user.websocket
    if (ws?.readyState !== 1) {
      try {
        await user.openWebsocket()
        user.o.recorder.count('restart:ws_reopened')
      } catch { await sleep(500); continue }
    }
    await user.echo(user.websocket!, seq, pad)
    await sleep(intervalMs * (0.5 + Math.random()))
  }
}

export async function runRestartStep(ctx: StepContext): Promise<void> {
  const { config, target, recorder: r, users } = ctx
  if (!target.restart) throw new Error('restart needs --target fleethub (a stack this run starts and can restart)')
  let stop = false
  const working: SimulatedUser[] = []
  const pad = 'x'.repeat(config.messageBytes)
  const visits = Array.from({ length: users }, async (_, i) => {
    await sleep(users === 1 ? 0 : (config.arrivalMs * i) / (users - 1))
    const user = new SimulatedUser({
      base: target.publicUrl, name: `${ctx.namePrefix}${i}`, password: target.password, leave: 'abandon', workUntil: Infinity,
      messageIntervalMs: config.messageIntervalMs, messageBytes: config.messageBytes, spawnTimeoutMs: Math.max(120_000, config.arrivalMs),
      recorder: r, expectDrops: true, onState: (from: UserState, to: UserState) => ctx.onState(from, to),
    })
    ctx.users_.push(user)
    ctx.onState(undefined, 'waiting')
    await user.run(async () => {
      working.push(user)
      await workThroughOutages(user, () => stop, config.messageIntervalMs, pad)
    })
  })
  // every user working (or failed) before the first outage
  const settled = Promise.all(visits)
  const arrivedBy = performance.now() + config.arrivalMs + 120_000
  for (let i = 0; i < 100_000 && performance.now() < arrivedBy; i++) {
    if (working.length + ctx.users_.filter(u => u.state === 'failed').length >= users) break
    await sleep(200)
  }
  const quiet = config.durationMs / (OUTAGES.length + 1)
  for (const component of OUTAGES) {
    await sleep(quiet)
    const event = await target.restart(component)
    r.record(`phase:restart_${component}`, event.upAt - event.killedAt)
    r.note(`restart:${component}`, `${event.how}; pid ${event.killedPid}`)
    const { servedAt, verdicts } = await waitServed(working, RECOVERY_TIMEOUT_MS)
    if (servedAt !== undefined) r.record(`phase:recovery_${component}`, servedAt - event.killedAt)
    else {
      r.count(`restart:not_recovered_${component}`)
      r.note(`restart:not_recovered_${component}`, [...verdicts].filter(([, v]) => v !== 'ok').slice(0, 5).map(([u, v]) => `${u.o.name}: ${v}`).join(', '))
    }
  }
  await sleep(quiet)
  // the verdict after the last outage: each user's session and server
  const { verdicts } = await waitServed(working, 10_000)
  for (const [u, v] of verdicts) {
    if (v === 'session_lost') { r.count('restart:sessions_lost'); r.note('restart:sessions_lost', u.o.name) }
    if (v === 'server_lost') { r.count('restart:servers_lost'); r.note('restart:servers_lost', u.o.name) }
    if (v === 'unreachable') { r.count('restart:servers_unreachable'); r.note('restart:servers_unreachable', u.o.name) }
  }
  r.count('restart:users_checked', verdicts.size)
  stop = true
  await settled
}

export const restart: Scenario<'restart'> = {
  name: 'restart',
  defaults: { ...DEFAULTS, arrival: '10s', duration: '40s', spawner: 'kube-sim' },
  stopsAtBreakingStep: false,
  needs: { restart: true },
  judgeText: 'no failed user; after each outage every user served again (session, server ready in the hub, server answering through the proxy) within 180 s; no session and no server lost',
  runStep: runRestartStep,
  /** Outages are the point: the verdict is recovery and nothing lost, not the steady-state SLOs. */
  judge(step) {
    const c = step.counts
    const f: Array<{ slo: string; failure: string }> = []
    const failed = Object.entries(c).filter(([k]) => k.startsWith('failed:')).reduce((a, [, n]) => a + n, 0)
    if (failed > 0) f.push({ slo: 'users-failed', failure: `${failed} users failed (${Object.entries(c).filter(([k]) => k.startsWith('failed:')).map(([k, n]) => `${k.slice(7)}=${n}`).join(', ')})` })
    for (const k of ['sessions_lost', 'servers_lost', 'servers_unreachable'] as const) {
      if ((c[`restart:${k}`] ?? 0) > 0) f.push({ slo: k.replace('_', '-'), failure: `${c[`restart:${k}`]} ${k.replace('_', ' ')}` })
    }
    for (const o of OUTAGES) {
      if ((c[`restart:not_recovered_${o}`] ?? 0) > 0) f.push({ slo: 'recovered', failure: `not every user was served within ${RECOVERY_TIMEOUT_MS / 1000} s of the ${o}'s kill` })
      else if (!step.latencies[`phase:recovery_${o}`]) f.push({ slo: 'recovered', failure: `no recovery measured for the ${o}` })
    }
    if ((c['restart:users_checked'] ?? 0) < step.users - failed) f.push({ slo: 'users-checked', failure: `only ${c['restart:users_checked'] ?? 0} users checked after the outages` })
    return f
  },
}
