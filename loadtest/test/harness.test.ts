/**
 * The harness parts of issue #16 that need no hub: the user models and their overrides, arrival
 * waves, which SLOs a step broke, the run's summary under --keep-going (a saturated generator not
 * counted), open-file limits read and raised, and the pid registry stopping real processes.
 */
import fs from 'node:fs'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { parseLoadtestConfig } from '../src/config.js'
import { fdLimitLines, readFdLimit, withRaisedFdLimit } from '../src/fd-limits.js'
import { generatorVerdict, judgeStep, stopAfter, summarizeRun } from '../src/run.js'
import { SCENARIOS } from '../src/scenarios/index.js'
import { arrivalOffsets } from '../src/scenarios/users.js'
import type { StepResult } from '../src/step.js'
import { PidRegistry } from '../src/targets/pid-registry.js'

t.test('--model: class is today\'s defaults, campus the day-long set; an explicit flag wins', async t => {
  const c = parseLoadtestConfig(['ramp'], {})
  t.match(c, { model: 'class', messageIntervalMs: 3000, httpIntervalMs: 10_000, activityIntervalMs: 300_000, waveUsers: 0, keepGoing: false })
  const campus = parseLoadtestConfig(['ramp', '--model', 'campus'], {})
  t.match(campus, { model: 'campus', messageIntervalMs: 60_000, httpIntervalMs: 60_000, activityIntervalMs: 300_000, waveUsers: 200 })
  t.same(campus.leaveMix, c.leaveMix, 'the leave mix as now')
  const o = parseLoadtestConfig(['ramp', '--model', 'campus', '--message-interval', '20s', '--wave-users', '0', '--keep-going'], {})
  t.match(o, { messageIntervalMs: 20_000, httpIntervalMs: 60_000, waveUsers: 0, keepGoing: true })
  t.same(o.overridden, ['message-interval', 'wave-users'])
  t.throws(() => parseLoadtestConfig(['ramp', '--model', 'office'], {}), /--model: class or campus/)
})

t.test('the registry is the one list: help, the parser and scenario defaults', async t => {
  const names = SCENARIOS.map(s => s.name)
  t.ok(names.includes('cull') && names.includes('restart'))
  for (const n of names) t.equal(parseLoadtestConfig([n], {}).scenario, n)
  t.equal(parseLoadtestConfig(['restart'], {}).spawner, 'kube-sim')
  t.equal(parseLoadtestConfig(['restart', '--spawner', 'local'], {}).spawner, 'local', 'a flag still wins')
  t.throws(() => parseLoadtestConfig(['cull', '--target', 'http://127.0.0.1:1'], { LOADTEST_PASSWORD: 'p' }), /culler on: use --target fleethub/)
  t.throws(() => parseLoadtestConfig(['cull', '--compare', 'jupyterhub'], {}), /--compare is not supported yet/)
  t.throws(() => parseLoadtestConfig(['restart', '--compare', 'jupyterhub'], {}), /--compare is not supported yet/)
  t.equal(parseLoadtestConfig(['cull', '--cull-timeout', '60s'], {}).activityIntervalMs, 30_000)
  t.equal(parseLoadtestConfig(['cull', '--cull-timeout', '60s', '--activity-interval', '50s'], {}).activityIntervalMs, 50_000)
})

t.test('arrivals: uniform, or class-sized waves each in the first quarter of its slot', async t => {
  t.same(arrivalOffsets(5, 4000), [0, 1000, 2000, 3000, 4000])
  const w = arrivalOffsets(1000, 100_000, 200)
  t.equal(w.length, 1000)
  const starts = [0, 200, 400, 600, 800].map(i => w[i])
  t.same(starts, [0, 20_000, 40_000, 60_000, 80_000], 'five waves 20 s apart')
  t.equal(w[199], 5000, 'each over a quarter of its slot')
  t.ok(w.every((x, i) => i === 0 || x >= w[i - 1]!), 'in order')
  const odd = arrivalOffsets(450, 90_000, 200)
  t.same([odd[0], odd[200], odd[400], odd[449]], [0, 30_000, 60_000, 67_500], 'a last, smaller wave too')
  t.same(arrivalOffsets(1, 1000, 200), [0])
})

const step = (index: number, o: { broken?: string[]; saturated?: boolean; failed?: number; users?: number }): StepResult => ({
  index, users: o.users ?? 100, slo: { healthy: (o.broken ?? []).length === 0, failures: o.broken ?? [], broken: o.broken ?? [] },
  generator: { saturated: o.saturated ?? false, cpuMean: 0, lagP99Median: 0, lagP99Max: 0, reasons: [] }, generatorLimited: o.saturated ?? false,
  servingStopped: (o.failed ?? 0) > 0.05 * (o.users ?? 100), tally: { users: o.users ?? 100, failed: o.failed ?? 0 },
} as unknown as StepResult)

t.test('judgeStep names the SLOs that broke', async t => {
  const cfg = parseLoadtestConfig(['ramp'], {})
  const v = judgeStep(cfg, { counts: { 'failed:spawn_timeout': 2, 'error:5xx': 1 }, latencies: { 'phase:ws_echo': { count: 10, errors: 0, min: 1, mean: 40, p50: 1, p90: 1, p99: 400, max: 400 } }, proxyAdded: null, autocannon: {} })
  t.same(v.broken, ['users-failed', 'no-5xx', 'ws-echo-p99'])
  t.equal(v.failures.length, 3)
  t.same(judgeStep(cfg, { counts: {}, latencies: {}, proxyAdded: null, autocannon: {} }), { healthy: true, failures: [], broken: [] })
})

t.test('--keep-going: every step until serving stopped; the summary names where each SLO broke', async t => {
  const ramp = parseLoadtestConfig(['ramp'], {})
  const keep = parseLoadtestConfig(['ramp', '--keep-going'], {})
  t.ok(stopAfter(ramp, step(1, { broken: ['hub-p99'] })), 'a ramp stops at its first unhealthy step')
  t.notOk(stopAfter(keep, step(1, { broken: ['hub-p99'] })), 'with --keep-going it goes on')
  t.notOk(stopAfter(keep, step(1, { broken: ['users-failed'], failed: 5 })), '5% failed: still serving')
  t.ok(stopAfter(keep, step(1, { broken: ['users-failed'], failed: 6 })), 'more than 5% failed: serving stopped')
  const s = summarizeRun([step(1, {}), step(2, { broken: ['ws-echo-p99'], saturated: true }), step(3, { broken: ['hub-p99', 'ws-echo-p99'] }),
    step(4, { broken: ['hub-p99', 'users-failed'], failed: 30 })])
  t.same(s.firstBroken, { 'hub-p99': 3, 'ws-echo-p99': 3, 'users-failed': 4 })
  t.same(s.firstBrokenSaturated, { 'ws-echo-p99': 2 })
  t.equal(s.breakingStep, 3, 'the saturated step is not the system\'s limit')
  t.equal(s.servingStoppedAt, 4)
  t.same(s.saturatedSteps, [2])
  t.same(s.unhealthySteps, [2, 3, 4])
  t.equal(summarizeRun([step(1, { broken: ['ws-echo-p99'], saturated: true })]).breakingStep, null)
})

t.test('generator saturation: CPU of its one thread, or its event loop late in the typical second', async t => {
  t.notOk(generatorVerdict({ generator: { cpuMean: 60, cpuMax: 90, rssMaxMb: 1, fdsMax: 1, procsMax: 1 } }, [10, 20, 300]).saturated, 'one bad second is not saturation')
  t.match(generatorVerdict({ generator: { cpuMean: 90, cpuMax: 99, rssMaxMb: 1, fdsMax: 1, procsMax: 1 } }, [10]), { saturated: true, reasons: [/CPU 90%/] })
  t.match(generatorVerdict({}, [150, 150, 20]), { saturated: true, lagP99Median: 150, lagP99Max: 150 })
})

t.test('open-file limits: read from /proc, raised for a child as far as allowed', async t => {
  const own = readFdLimit(process.pid)!
  t.ok(own.soft > 0 && own.hard >= own.soft)
  const cmd = withRaisedFdLimit('sh', ['-c', 'ulimit -Sn'])
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'ignore'] })
  let text = ''
  child.stdout!.on('data', d => { text += String(d) })
  await once(child, 'exit')
  t.ok(Number(text.trim()) >= own.soft, `the child may open ${text.trim()} (this process ${own.soft}, hard ${own.hard})`)
  const [line] = fdLimitLines([{ name: 'generator', pid: process.pid }, { name: 'hub', pid: process.pid }], 1_000_000_000)
  t.match(line, { name: 'generator', fdsPerUser: 2, enough: false }, 'only the connection-holding processes, and a limit too low is said')
  t.equal(line!.usersAllowed, Math.floor((own.soft - 200) / 2))
  const [split] = fdLimitLines([{ name: 'generator', pid: process.pid }], 40_000, { generator: 4 })
  t.equal(split!.usersNeeded, 10_000, 'users split over 4 generator processes: each needs its share')

  // a proxy with workers (or kube-sim with pod hosts): the users live in its children, whose limits add up
  const parent = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' })
  t.teardown(() => { parent.kill('SIGKILL') })
  let kids: string[] = []
  for (let i = 0; i < 50 && kids.length < 2; i++) {
    await new Promise(r => setTimeout(r, 50))
    try { kids = fs.readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean) } catch { kids = [] }
  }
  const [tree] = fdLimitLines([{ name: 'proxy', pid: parent.pid }], 1_000_000_000)
  const kidLimit = readFdLimit(Number(kids[0]))!.soft
  t.match(tree, { name: 'proxy', hosts: 2 }, 'two children seen')
  t.equal(tree!.usersAllowed, 2 * Math.floor((kidLimit - 200) / 2), 'their limits summed')
  for (const k of kids) { try { process.kill(Number(k), 'SIGKILL') } catch { /* gone */ } }
  parent.kill('SIGKILL')
})

t.test('the pid registry stops what outlived its stop, and never a reused pid', async t => {
  const reg = new PidRegistry()
  // a process that ignores SIGTERM: it must take the SIGKILL
  const stubborn = spawn('sh', ['-c', 'trap "" TERM; sleep 30 & wait'], { stdio: 'ignore' })
  const polite = spawn('sleep', ['30'], { stdio: 'ignore' })
  await new Promise(r => setTimeout(r, 200))
  reg.recordTree('stubborn', stubborn.pid)
  reg.record('polite', polite.pid)
  reg.record('gone', 2 ** 22 + 7)
  t.same(reg.list().map(p => p.name).sort(), ['polite', 'stubborn', 'stubborn-child'])
  const left = await reg.stopAll(500)
  t.equal(left.length, 3, 'all three were still running')
  await Promise.all([once(stubborn, 'exit'), once(polite, 'exit')].map(p => Promise.race([p, new Promise(r => setTimeout(r, 5000))])))
  t.same(reg.alive(), [], 'none alive afterwards')
  t.equal(stubborn.signalCode, 'SIGKILL')
  t.equal(polite.signalCode, 'SIGTERM')
})

t.test("a run's logs kept with its report: every *.log, gzipped, the tail of a long one", async t => {
  const { keepLogs } = await import('../src/keep-logs.js')
  const { gunzipSync } = await import('node:zlib')
  const os = await import('node:os')
  const path = await import('node:path')
  const work = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'keep-logs-work-'))
  const report = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'keep-logs-report-'))
  t.teardown(() => Promise.all([fs.promises.rm(work, { recursive: true, force: true }), fs.promises.rm(report, { recursive: true, force: true })]))
  await fs.promises.writeFile(path.join(work, 'hub.log'), 'line 1\nline 2\nthe end\n')
  await fs.promises.writeFile(path.join(work, 'kube-sim.log'), 'x'.repeat(1000) + 'TAIL')
  await fs.promises.writeFile(path.join(work, 'empty.log'), '')
  await fs.promises.writeFile(path.join(work, 'kubeconfig.json'), '{}')
  const kept = await keepLogs(work, report, 100)
  t.same(kept, ['logs/hub.log.gz', 'logs/kube-sim.log.gz'], 'the non-empty logs, not other files')
  t.equal(gunzipSync(fs.readFileSync(path.join(report, 'logs/hub.log.gz'))).toString(), 'line 1\nline 2\nthe end\n')
  const tail = gunzipSync(fs.readFileSync(path.join(report, 'logs/kube-sim.log.gz'))).toString()
  t.equal(tail.length, 100, 'a long log: its last 100 bytes')
  t.ok(tail.endsWith('TAIL'))
  t.same(await keepLogs(path.join(work, 'gone'), report), [], 'no work directory, nothing kept')
})
