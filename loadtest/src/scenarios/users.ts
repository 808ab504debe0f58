/**
 * The step of the user-driven scenarios (class-start.ts, steady.ts, ramp.ts): `users` simulated
 * students arrive uniformly over the arrival window, log in, spawn, open their server, work until
 * the end of the step's hold, then leave by the configured mix. Meanwhile a probe times the same
 * hub request through the proxy and directly, which gives the proxy's added latency.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Recorder } from '../histogram.js'
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

export async function runUsersStep(ctx: StepContext): Promise<void> {
  const { config, target, recorder: r, users } = ctx
  const leaves = assignLeaves(users, config.leaveMix)
  const t0 = performance.now()
  const workUntil = t0 + config.arrivalMs + config.durationMs
  let done = false
  const probe = target.hubUrl ? probeProxy(target.publicUrl, target.hubUrl, r, () => done) : Promise.resolve()
  const visits = Array.from({ length: users }, async (_, i) => {
    const arriveAt = users === 1 ? 0 : (config.arrivalMs * i) / (users - 1)
    await sleep(Math.max(0, t0 + arriveAt - performance.now()))
    const user = new SimulatedUser({
      base: target.publicUrl, name: `${ctx.namePrefix}${i}`, password: target.password, leave: leaves[i]!, workUntil,
      messageIntervalMs: config.messageIntervalMs, httpIntervalMs: config.httpIntervalMs, messageBytes: config.messageBytes,
      spawnTimeoutMs: Math.max(120_000, config.arrivalMs), recorder: r,
      onState: (from: UserState, to: UserState) => ctx.onState(from, to),
    })
    ctx.users_.push(user)
    ctx.onState(undefined, 'waiting')
    await user.run()
  })
  await Promise.all(visits)
  done = true
  await probe
}
