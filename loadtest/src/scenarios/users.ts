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

export async function runUsersStep(ctx: StepContext): Promise<void> {
  const { config, target, recorder: r, users } = ctx
  const leaves = assignLeaves(users, config.leaveMix)
  const t0 = performance.now()
  const workUntil = t0 + config.arrivalMs + config.durationMs
  let done = false
  const probe = target.hubUrl ? probeProxy(target.publicUrl, target.hubUrl, r, () => done) : Promise.resolve()
  const arrivals = arrivalOffsets(users, config.arrivalMs, config.waveUsers)
  const visits = Array.from({ length: users }, async (_, i) => {
    const arriveAt = arrivals[i]!
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
