/**
 * A child generator process (child-generators.ts forks it): runs the users dealt to it with the
 * very code the runner uses in-process (scenarios/users.ts runVisits), and reports to its parent
 * in batches (batch.ts), with its own CPU and event-loop delay each second so the step can say
 * whether any generator process was saturated. It lives only as long as its IPC channel: when the
 * parent disconnects, stops it or dies, it exits (its silent users' websockets close with it).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { raiseOwnFdLimit } from '../fd-limits.js'
import { runVisits } from '../scenarios/users.js'
import type { SimulatedUser } from '../simulated-user.js'
import { BATCH_MS, BatchRecorder, type ChildMessage, type StartMessage } from './batch.js'

const LOAD_EVERY_MS = 1000

function send(m: ChildMessage): void {
  if (process.connected) process.send!(m)
}

/** Every LOAD_EVERY_MS: this process's CPU (% of one core) and event-loop delay p99 (ms) over the last second. */
function meterLoad(out: BatchRecorder): () => void {
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  let cpu = process.cpuUsage(), at = performance.now()
  const timer = setInterval(() => {
    const used = process.cpuUsage(cpu), now = performance.now()
    const pct = ((used.user + used.system) / 1000) / (now - at) * 100
    out.load({ cpu: Math.round(pct * 10) / 10, lagP99: lag.count > 0 ? Math.round(lag.percentile(99) / 1e5) / 10 : 0 })
    lag.reset()
    cpu = process.cpuUsage(); at = now
  }, LOAD_EVERY_MS)
  return () => { clearInterval(timer); lag.disable() }
}

async function run(m: StartMessage): Promise<void> {
  const out = new BatchRecorder()
  const users: SimulatedUser[] = []
  const stopMeter = meterLoad(out)
  const flush = setInterval(() => send(out.take()), BATCH_MS)
  const toLocal = (epoch: number) => epoch - performance.timeOrigin
  await runVisits(m.plan, m.indices, toLocal(m.t0Epoch), toLocal(m.workUntilEpoch), out, {
    arrived: (user, i) => { users.push(user); out.state(i, null, 'waiting') },
    onState: (i, from, to) => out.state(i, from, to),
    finished: (user, i) => out.finished({ index: i, state: user.state, tally: { ...user.tally } }),
  })
  clearInterval(flush)
  stopMeter()
  send(out.take())
  send({ type: 'done', silent: users.filter(u => u.state === 'silent').length })
}

// A Ctrl-C reaches the whole process group: the parent decides (it stops its children in order).
process.on('SIGINT', () => undefined)
process.on('disconnect', () => process.exit(0))
raiseOwnFdLimit()
process.once('message', (m: StartMessage) => {
  run(m).catch(err => {
    process.stderr.write(`generator child: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
})
send({ type: 'ready' })
