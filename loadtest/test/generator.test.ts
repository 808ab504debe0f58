/**
 * Child generators without a hub (generator/): --generators parsed and resolved, a child's batches
 * merged into the step's recorder at the times they were taken, tallies summed over in-process and
 * remote users, a step saturated by any one generator process, and a child killed mid-step failing
 * its users with a note while the step still ends (children run worker.ts under tsx here).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { parseLoadtestConfig } from '../src/config.js'
import { BatchRecorder, applyBatch, epochNow, type Batch } from '../src/generator/batch.js'
import { RemoteUser, runUsersInChildren, stopGeneratorChildren } from '../src/generator/child-generators.js'
import { Recorder } from '../src/histogram.js'
import { generatorProcesses } from '../src/loadtest-config.js'
import { generatorVerdict, stepTally } from '../src/run.js'
import { visitPlan } from '../src/scenarios/users.js'
import type { UserState } from '../src/simulated-user.js'
import type { GeneratorChildReport, StepContext, UserHandle } from '../src/step.js'
import type { Target } from '../src/targets/target.js'

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('--generators: auto keeps small steps in-process; N forces N', async t => {
  t.equal(parseLoadtestConfig(['ramp'], {}).generators, 'auto')
  t.equal(parseLoadtestConfig(['ramp', '--generators', '3'], {}).generators, 3)
  t.throws(() => parseLoadtestConfig(['ramp', '--generators', 'many'], {}), /--generators/)
  t.throws(() => parseLoadtestConfig(['ramp', '--generators', '0'], {}), /--generators/)
  t.equal(generatorProcesses('auto', 20), 1)
  t.equal(generatorProcesses('auto', 1000), 1, 'up to 1,000 users in-process')
  t.equal(generatorProcesses('auto', 1001), 1, 'ceil(1001 / 1500) = 1')
  t.equal(generatorProcesses('auto', 3000), 2)
  t.equal(generatorProcesses('auto', 20_000), 4, 'capped at 4')
  t.equal(generatorProcesses(1, 20_000), 1)
  t.equal(generatorProcesses(4, 3), 3, 'never more children than users')
})

t.test('a batch merges into the recorder in the seconds its samples were taken', async t => {
  const r = new Recorder(performance.now())
  const base = performance.timeOrigin + r.t0
  const b: Batch = {
    type: 'batch', samples: [['phase:ws_echo', 10, base + 200], ['phase:ws_echo', 30, base + 2500], ['phase:login', 50, base + 2600]],
    errors: [['phase:ws_echo', base + 4100]], counts: { login_ok: 1, 'leave:tidy': 2 }, notes: [['failed:x', 'lt1u3 in login: boom']],
    states: [], finished: [], load: [],
  }
  applyBatch(r, JSON.parse(JSON.stringify(b)) as Batch)
  applyBatch(r, { samples: [['phase:ws_echo', 20, base + 2900]], errors: [], counts: { login_ok: 2 }, notes: [] })
  t.match(r.latencies()['phase:ws_echo'], { count: 3, errors: 1, p50: 20, max: 30 })
  t.same(r.counts(), { 'leave:tidy': 2, login_ok: 3 })
  t.same(r.notes(), { 'failed:x': ['lt1u3 in login: boom'] })
  const series = r.series()
  t.same(series.map(p => [p.t, p.ops, p.errors]), [[0, 1, 0], [1, 0, 0], [2, 3, 0], [3, 0, 0], [4, 0, 1]], 'each sample in its own second')

  // the child's end: what its users record comes out in one batch, then the next starts empty
  const child = new BatchRecorder()
  child.record('k', 5); child.error('k'); child.count('c', 2); child.state(7, null, 'waiting')
  for (let i = 0; i < 8; i++) child.note('failed:y', `m${i}`)
  const at = epochNow()
  const taken = child.take()
  t.equal(taken.samples.length, 1)
  t.ok(Math.abs(taken.samples[0]![2] - at) < 1000, 'samples carry wall-clock epoch ms')
  t.equal(taken.notes.length, 5, 'at most 5 notes per outcome are sent')
  t.same(taken.states, [[7, null, 'waiting']])
  t.same(child.take(), { type: 'batch', samples: [], errors: [], counts: {}, notes: [], states: [], finished: [], load: [] })
})

t.test('the step tally sums in-process and remote users alike', async t => {
  const local: UserHandle = { state: 'done', tally: { loggedIn: true, spawned: true, stopped: true, echoes: 4, messagesSent: 4, retries429: 1 }, close: () => undefined }
  const a = new RemoteUser(() => undefined), b = new RemoteUser(() => undefined), c = new RemoteUser(() => undefined)
  a.finish('silent', { loggedIn: true, spawned: true, stopped: false, echoes: 3, messagesSent: 3, retries429: 0 })
  b.finish('done', { loggedIn: true, spawned: true, stopped: true, echoes: 2, messagesSent: 3, retries429: 2 })
  c.state = 'failed'
  t.same(stepTally([local, a, b, c]), { users: 4, loggedIn: 3, spawned: 3, stopped: 2, failed: 1, echoes: 9, messagesSent: 10, retries429: 3 })
})

t.test('a step is saturated when any generator process is', async t => {
  const res = { generator: { cpuMean: 20, cpuMax: 30, rssMaxMb: 1, fdsMax: 1, procsMax: 1 } }
  const child = (cpu: number, lag: number): GeneratorChildReport => ({ pid: 1, users: 10, cpu: [cpu, cpu, cpu], lagP99s: [lag, lag, lag] })
  const calm = generatorVerdict(res, [5, 5], [child(40, 10), child(50, 12)])
  t.match(calm, { saturated: false, count: 3, cpuMean: 50, reasons: [] })
  t.same(calm.processes!.map(p => [p.name, p.users, p.cpuMean]), [['parent', 0, 20], ['child 1', 10, 40], ['child 2', 10, 50]])
  t.match(generatorVerdict(res, [5, 5], [child(40, 10), child(92, 12)]), { saturated: true, reasons: ['child 2: CPU 92% of a core >= 85%'] })
  t.match(generatorVerdict(res, [5, 5], [child(40, 150)]), { saturated: true, lagP99Median: 150, reasons: [/child 1: event-loop lag p99 150 ms/] })
  t.match(generatorVerdict(res, [5], [], 7), { saturated: false, count: 1, processes: [{ name: 'parent', users: 7 }] })
})

t.test('children killed mid-step: their users fail with a note, the step still ends', async t => {
  // a hub that never answers: every user waits in login until its child goes
  const hung = http.createServer(() => undefined)
  await new Promise<void>(resolve => hung.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { hung.closeAllConnections(); hung.close() })
  const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`
  const config = parseLoadtestConfig(['class-start', '--users', '6', '--arrival', '0s', '--duration', '1s', '--generators', '2'], {})
  const states: Record<string, number> = {}
  const ctx: StepContext = {
    config, target: { publicUrl: url, password: 'x' } as Target, recorder: new Recorder(), users: 6, index: 1, namePrefix: 'lt1u',
    users_: [], generators: [], autocannon: {},
    onState(from: UserState | undefined, to: UserState) { if (from) states[from] = (states[from] ?? 0) - 1; states[to] = (states[to] ?? 0) + 1 },
  }
  const running = runUsersInChildren(ctx, 2, visitPlan(ctx))
  t.teardown(stopGeneratorChildren)
  for (let i = 0; i < 200 && (states.login ?? 0) < 6; i++) await new Promise(r => setTimeout(r, 50))
  t.equal(states.login, 6, 'every user is logging in (the hub hangs)')
  const [first, second] = ctx.generators
  process.kill(first!.pid!, 'SIGKILL')
  await new Promise(r => setTimeout(r, 500))
  t.notOk(alive(first!.pid!), 'the first child is gone')
  t.ok(alive(second!.pid!), 'the second still runs')
  process.kill(second!.pid!, 'SIGKILL')
  await running
  t.equal(ctx.users_.length, 6)
  t.ok(ctx.users_.every(u => u.state === 'failed'), 'every user of the killed children failed')
  t.equal(ctx.recorder.counts()['failed:generator_exit'], 6)
  t.equal(ctx.recorder.counts()['failed_in:login'], 6)
  t.match(ctx.recorder.notes()['failed:generator_exit']![0], /generator child 1 \(pid \d+\) exited \(SIGKILL\) with 3 of its 3 users unfinished/)
  t.same(ctx.generators.map(g => [g.users, g.crashed]), [[3, 'SIGKILL'], [3, 'SIGKILL']])
  t.equal(states.failed, 6)
  t.equal(states.login, 0)
})
