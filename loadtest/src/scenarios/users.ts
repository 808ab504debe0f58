/**
 * The step of the user-driven scenarios (class-start.ts, steady.ts, ramp.ts): `users` simulated
 * students arrive uniformly over the arrival window, log in, spawn, open their server, work until
 * the end of the step's hold, then leave by the configured mix. Meanwhile a probe times the same
 * hub request through the proxy and directly, which gives the proxy's added latency.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { runUsersInChildren } from '../generator/child-generators.js'
import type { Recorder, RecorderSink } from '../histogram.js'
import { generatorProcesses } from '../loadtest-config.js'
import { SimulatedUser, type LeaveMode, type UserState } from '../simulated-user.js'
import type { StepContext } from '../step.js'

/** Leave modes for n users in the mix's proportions (largest remainder), spread through the arrival order. */
export function assignLeaves(n: number, mix: Readonly<Record<LeaveMode, number>>): LeaveMode[] {
  const modes = Object.keys(mix) as LeaveMode[]
  const exact = modes.map(m => mix[m] * n)
  const counts = exact.map(Math.floor)
  const order = modes.map((_, i) => i).sort((a, b) => (exact[b]! - counts[b]!) - (exact[a]! - counts[a]!))
  for (let i = 0; counts.reduce((x, y) => x + y, 0) < n; i++) counts[order[i % modes.length]!]!++
  const out: LeaveMode[] = []
  // round-robin by share so early and late arrivals get the same mix
  const left = [...counts]
  for (let i = 0; i < n; i++) {
    let best = 0
    for (let m = 1; m < modes.length; m++) if (left[m]! / (counts[m]! || 1) > left[best]! / (counts[best]! || 1)) best = m
    out.push(modes[best]!)
    left[best]!--
  }
  return out
}

/**
 * When each of n users arrives, ms after the step starts. `waveUsers` 0: uniformly over
 * `arrivalMs`. Else in waves of up to `waveUsers` (a class), the waves' starts evenly spaced over
 * `arrivalMs` and each wave's users uniformly over the first quarter of its slot, so a campus step
 * is bursts of one class's logins and spawns with quiet between them, not an even trickle.
 * E.g. 10,000 users over 240 s in waves of 200: 50 waves 4.8 s apart, each arriving within 1.2 s.
 */
export function arrivalOffsets(n: number, arrivalMs: number, waveUsers = 0): number[] {
  if (n <= 0) return []
  if (waveUsers <= 0 || n <= 1) return Array.from({ length: n }, (_, i) => n === 1 ? 0 : (arrivalMs * i) / (n - 1))
  const waves = Math.ceil(n / waveUsers)
  const slot = arrivalMs / waves
  const spread = slot / 4
  return Array.from({ length: n }, (_, i) => {
    const wave = Math.floor(i / waveUsers)
    const inWave = Math.min(waveUsers, n - wave * waveUsers)
    const k = i - wave * waveUsers
    return wave * slot + (inWave === 1 ? 0 : (spread * k) / (inWave - 1))
  })
}

/**
 * Time GET /hub/api through the proxy and straight at the hub until `until`: two loops side by side,
 * each every 250 ms. (One loop alternating the two measured nothing direct while a request through the
 * proxy stalled, so a busy hub looked like a slow proxy; bench-results/README.md, round 2.)
 */
async function probeProxy(publicUrl: string, hubUrl: string, r: Recorder, until: () => boolean): Promise<void> {
  const loop = async (key: string, base: string): Promise<void> => {
    for (let i = 0; i < 100_000 && !until(); i++) {
      const t0 = performance.now()
      try {
        const res = await fetch(`${base}/hub/api/`, { signal: AbortSignal.timeout(10_000) })
        await res.arrayBuffer()
        if (res.status === 200) r.record(key, performance.now() - t0)
        else r.error(key)
      } catch { r.error(key) }
      await sleep(250)
    }
  }
  await Promise.all([loop('probe:via_proxy', publicUrl), loop('probe:direct', hubUrl)])
}

export { probeProxy }

/** What every user's visit in a step needs: the same in-process and in a child generator (generator/worker.ts). */
export interface VisitPlan {
  /** The hub's public URL. */
  readonly base: string
  readonly password: string
  /** User i is `${namePrefix}${i}`. */
  readonly namePrefix: string
  /** By user index: how each leaves (assignLeaves) and when it arrives, ms after the step's t0 (arrivalOffsets). */
  readonly leaves: readonly LeaveMode[]
  readonly arrivals: readonly number[]
  readonly messageIntervalMs: number
  readonly httpIntervalMs: number
  readonly messageBytes: number
  readonly spawnTimeoutMs: number
}

/** The step's plan from its config and target: computed once, in the runner's process. */
export function visitPlan(ctx: StepContext): VisitPlan {
  const { config, target, users } = ctx
  return {
    base: target.publicUrl, password: target.password, namePrefix: ctx.namePrefix,
    leaves: assignLeaves(users, config.leaveMix), arrivals: arrivalOffsets(users, config.arrivalMs, config.waveUsers),
    messageIntervalMs: config.messageIntervalMs, httpIntervalMs: config.httpIntervalMs, messageBytes: config.messageBytes,
    spawnTimeoutMs: Math.max(120_000, config.arrivalMs),
  }
}

/** What runVisits tells its caller: a user arrived (before it runs), a user changed state, a user's visit ended. */
export interface VisitHooks {
  arrived(user: SimulatedUser, i: number): void
  onState(i: number, from: UserState, to: UserState): void
  finished?(user: SimulatedUser, i: number): void
}

/**
 * The visits of the users `indices` of `plan`: user i arrives at t0 + plan.arrivals[i], works until
 * `workUntil` and leaves (t0 and workUntil in this process's performance.now()).
 */
export async function runVisits(plan: VisitPlan, indices: readonly number[], t0: number, workUntil: number, recorder: RecorderSink, hooks: VisitHooks): Promise<void> {
  await Promise.all(indices.map(async i => {
    await sleep(Math.max(0, t0 + plan.arrivals[i]! - performance.now()))
    const user = new SimulatedUser({
      base: plan.base, name: `${plan.namePrefix}${i}`, password: plan.password, leave: plan.leaves[i]!, workUntil,
      messageIntervalMs: plan.messageIntervalMs, httpIntervalMs: plan.httpIntervalMs, messageBytes: plan.messageBytes,
      spawnTimeoutMs: plan.spawnTimeoutMs, recorder,
      onState: (from: UserState, to: UserState) => hooks.onState(i, from, to),
    })
    hooks.arrived(user, i)
    await user.run()
    hooks.finished?.(user, i)
  }))
}

/**
 * The step: in this process, or (--generators, loadtest-config.ts generatorProcesses) dealt over
 * child generator processes, user i to child i % N, so that the generator's own CPU is not what
 * limits a large step. The proxy probe stays here either way.
 */
export async function runUsersStep(ctx: StepContext): Promise<void> {
  const { config, target, recorder: r, users } = ctx
  const plan = visitPlan(ctx)
  const n = generatorProcesses(config.generators ?? 'auto', users)
  let done = false
  const probe = target.hubUrl ? probeProxy(target.publicUrl, target.hubUrl, r, () => done) : Promise.resolve()
  try {
    if (n > 1) await runUsersInChildren(ctx, n, plan)
    else {
      const t0 = performance.now()
      await runVisits(plan, plan.arrivals.map((_, i) => i), t0, t0 + config.arrivalMs + config.durationMs, r, {
        arrived: user => { ctx.users_.push(user); ctx.onState(undefined, 'waiting') },
        onState: (_, from, to) => ctx.onState(from, to),
      })
    }
  } finally {
    done = true
    await probe
  }
}
