/**
 * The load-test runner: start (or reach) the target, sample resources every second, run the
 * scenario step by step with a live display, judge each step against the SLOs (ramp stops at the
 * first unhealthy one: the breaking point), stop everything, write the report.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from '../../core/src/log.js'
import type { LoadtestConfig } from './loadtest-config.js'
import { Recorder } from './histogram.js'
import { LiveDisplay } from './live.js'
import { ResourceSampler, type ResourcePoint } from './resources.js'
import { AcceptQueueSampler } from './accept-queue.js'
import { scenarioOf } from './scenarios/index.js'
import type { UserState } from './simulated-user.js'
import { keepHubProfile, monotonicUs, type HubProfile } from './hub-profile.js'
import type { ProfileWindow } from './flamegraph.js'
import type { RunResult } from './run-result.js'
import type { AutocannonSummary, GeneratorChildReport, GeneratorProcess, GeneratorVerdict, ProcessSummary, StepContext, StepResult, StepTally, UserHandle } from './step.js'
import { stopGeneratorChildren } from './generator/child-generators.js'
import type { RunSummary } from './run-result.js'
import { generatorProcesses, SERVING_STOPPED_SHARE } from './loadtest-config.js'
import { runUsersStep } from './scenarios/users.js'
import { reportDirFor, writeReport } from './report.js'
import { jupyterhubUnavailable } from './targets/jupyterhub.js'
import { REPO } from './targets/processes.js'
import { startTarget } from './targets/start-target.js'
import { TargetUnavailable, type Target } from './targets/target.js'
import { fdLimitLines, fdLimitWarning, raiseOwnFdLimit, type FdLimitLine } from './fd-limits.js'
import { keepLogs } from './keep-logs.js'

export interface RunDeps {
  readonly log: Logger
  readonly out?: NodeJS.WritableStream
  /** The exact command line, for the report. */
  readonly command?: string
  /** Called with the running target after the last step, before it is stopped (tests read the database here). */
  readonly beforeStop?: (target: Target, result: RunResult) => Promise<void>
  /** Called once the target is up, before the first step (tests kill a process of it). */
  readonly onTarget?: (target: Target) => void
  /** Stop the run (and its target) on SIGINT/SIGTERM, and kill its processes on a second one: the CLI. Default false. */
  readonly handleSignals?: boolean
}

const GENERATOR_LIMIT_CPU = 85 // % of one core: Node runs the generator's JS on one thread
const GENERATOR_LIMIT_LAG_MS = 100 // median over the step of the per-second event-loop delay p99

function median(xs: number[]): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** `; accept queue hub max 12 p99 3, proxy max 0 p99 0` for the step's summary line, or ''. */
export function acceptQueueLine(step: Pick<StepResult, 'acceptQueue'>): string {
  const q = step.acceptQueue
  if (!q) return ''
  const part = (name: string, s: { max: number; p99: number } | undefined) => s ? `${name} max ${s.max} p99 ${s.p99}` : `${name} -`
  return `; accept queue ${part('hub', q.hub)}, ${part('proxy', q.proxy)}`
}

export function gitSha(): string {
  try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { return 'unknown' }
}

export function machineInfo(): Record<string, unknown> {
  return { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10, platform: `${os.platform()} ${os.release()}`, loadavgAtStart: os.loadavg().map(l => Math.round(l * 100) / 100) }
}

function summarizeProcesses(points: ResourcePoint[]): Record<string, ProcessSummary> {
  const out: Record<string, ProcessSummary> = {}
  const names = new Set(points.flatMap(p => Object.keys(p.procs)))
  for (const name of names) {
    const xs = points.map(p => p.procs[name]).filter((x): x is NonNullable<typeof x> => x !== null && x !== undefined)
    if (xs.length === 0) continue
    const r = (n: number) => Math.round(n * 10) / 10
    out[name] = {
      cpuMean: r(xs.reduce((a, x) => a + x.cpu, 0) / xs.length), cpuMax: r(Math.max(...xs.map(x => x.cpu))),
      rssMaxMb: r(Math.max(...xs.map(x => x.rssMb))), fdsMax: Math.max(...xs.map(x => x.fds)), procsMax: Math.max(...xs.map(x => x.procs)),
      fdLimit: xs.some(x => typeof x.fdLimit === 'number') ? Math.min(...xs.map(x => x.fdLimit ?? Infinity)) : null,
    }
  }
  return out
}

/**
 * Hub requests that count for the hub p99 SLO: every /hub/ request but those that wait for a
 * server by design (the spawn POST up to slow_spawn_timeout, the progress stream until ready, the
 * stop DELETE until the server is gone); spawn and stop times have their own phases.
 */
export function isHubApiKey(key: string): boolean {
  return key.startsWith('http:') && key.includes(' /hub/') && !key.endsWith('/server/progress') &&
    key !== 'http:POST /hub/api/users/{name}/server' && key !== 'http:DELETE /hub/api/users/{name}/server'
}

/** The SLOs by name, in the order a report lists them (shared/LOADTEST.md). */
export const SLO_NAMES = ['users-failed', 'no-5xx', 'no-ws-dropped', 'api-errors', 'hub-p99', 'proxy-added-p99', 'ws-echo-p99'] as const

/** The SLO verdict of one step (shared/LOADTEST.md: no failed spawn, no 5xx, no dropped websocket, p99 bounds), with which SLOs broke. */
export function judgeStep(config: LoadtestConfig, s: Pick<StepResult, 'counts' | 'latencies' | 'proxyAdded' | 'autocannon'>): { healthy: boolean; failures: string[]; broken: string[] } {
  const f: Array<{ slo: string; failure: string }> = []
  const c = s.counts
  const failedUsers = Object.entries(c).filter(([k]) => k.startsWith('failed:')).reduce((a, [, n]) => a + n, 0)
  if (failedUsers > 0) f.push({ slo: 'users-failed', failure: `${failedUsers} users failed (${Object.entries(c).filter(([k]) => k.startsWith('failed:')).map(([k, n]) => `${k.slice(7)}=${n}`).join(', ')})` })
  if ((c['error:5xx'] ?? 0) > 0) f.push({ slo: 'no-5xx', failure: `${c['error:5xx']} responses were 5xx` })
  if ((c['error:ws_dropped'] ?? 0) > 0) f.push({ slo: 'no-ws-dropped', failure: `${c['error:ws_dropped']} websockets dropped` })
  for (const [k, a] of Object.entries(s.autocannon)) {
    if (a.non2xx > 0 || a.errors > 0) f.push({ slo: 'api-errors', failure: `${k}: ${a.non2xx} non-2xx, ${a.errors} errors` })
  }
  const hubP99 = Math.max(0, ...Object.entries(s.latencies).filter(([k]) => isHubApiKey(k)).map(([, l]) => l.p99),
    ...Object.entries(s.autocannon).filter(([k]) => k.includes('/hub/')).map(([, a]) => a.p99))
  if (hubP99 > config.slo.hubApiP99Ms) f.push({ slo: 'hub-p99', failure: `hub p99 ${hubP99} ms > ${config.slo.hubApiP99Ms} ms` })
  if (s.proxyAdded && s.proxyAdded.p99 > config.slo.proxyAddedP99Ms) f.push({ slo: 'proxy-added-p99', failure: `proxy added p99 ${s.proxyAdded.p99} ms > ${config.slo.proxyAddedP99Ms} ms` })
  const echo = s.latencies['phase:ws_echo']
  if (echo && echo.count > 0 && echo.p99 > config.slo.wsEchoP99Ms) f.push({ slo: 'ws-echo-p99', failure: `websocket echo p99 ${echo.p99} ms > ${config.slo.wsEchoP99Ms} ms` })
  return verdict(f)
}

function verdict(f: Array<{ slo: string; failure: string }>): { healthy: boolean; failures: string[]; broken: string[] } {
  return { healthy: f.length === 0, failures: f.map(x => x.failure), broken: [...new Set(f.map(x => x.slo))] }
}

/**
 * Whether the load generator limited the step rather than the system: its own CPU (Node runs the
 * generator's JavaScript on one thread) at GENERATOR_LIMIT_CPU % of a core or more on average, or
 * its event loop late by more than GENERATOR_LIMIT_LAG_MS in the typical second (the median over
 * the step of each second's delay p99). Why these: at 100 ms of its own lag a generator adds 40%
 * of the websocket-echo budget (250 ms) to what it measures, so a broken echo or hub p99 can no
 * longer be told apart from its own queueing; a single thread busy 85% of the time on average
 * spends whole seconds at 100% and queues in them. A step over either is marked saturated and is
 * not counted as the system's limit. With child generators (--generators) each process is judged
 * on its own figures, and one over either limit saturates the step: its users' timings include its
 * queueing. `parentUsers`: the users this process ran itself.
 */
export function generatorVerdict(resources: Record<string, ProcessSummary>, lagP99s: number[], children: readonly GeneratorChildReport[] = [], parentUsers = 0): GeneratorVerdict {
  const mean = (xs: number[]) => xs.length === 0 ? 0 : Math.round(xs.reduce((a, x) => a + x, 0) / xs.length * 10) / 10
  const processes: GeneratorProcess[] = [
    { name: 'parent', pid: process.pid, users: parentUsers, cpuMean: resources.generator?.cpuMean ?? 0, lagP99Median: median(lagP99s), lagP99Max: Math.max(0, ...lagP99s) },
    ...children.map((c, i) => ({
      name: `child ${i + 1}`, ...(c.pid !== undefined ? { pid: c.pid } : {}), users: c.users, cpuMean: mean(c.cpu),
      lagP99Median: median(c.lagP99s), lagP99Max: Math.max(0, ...c.lagP99s), ...(c.crashed ? { crashed: c.crashed } : {}),
    })),
  ]
  const reasons: string[] = []
  for (const p of processes) {
    const who = children.length > 0 ? `${p.name}: ` : ''
    if (p.cpuMean >= GENERATOR_LIMIT_CPU) reasons.push(`${who}CPU ${p.cpuMean}% of a core >= ${GENERATOR_LIMIT_CPU}%`)
    if (p.lagP99Median > GENERATOR_LIMIT_LAG_MS) reasons.push(`${who}event-loop lag p99 ${p.lagP99Median} ms in the median second > ${GENERATOR_LIMIT_LAG_MS} ms`)
  }
  return {
    saturated: reasons.length > 0, cpuMean: Math.max(...processes.map(p => p.cpuMean)), lagP99Median: Math.max(...processes.map(p => p.lagP99Median)),
    lagP99Max: Math.max(...processes.map(p => p.lagP99Max)), count: processes.length, processes, reasons,
  }
}

/** The users' own counters, summed (the step's tally): in-process users and child generators' alike. */
export function stepTally(users: readonly UserHandle[]): StepTally {
  const sum = (f: (t: UserHandle['tally']) => number) => users.reduce((a, u) => a + f(u.tally), 0)
  return {
    users: users.length, loggedIn: sum(t => Number(t.loggedIn)), spawned: sum(t => Number(t.spawned)), stopped: sum(t => Number(t.stopped)),
    failed: users.filter(u => u.state === 'failed').length, echoes: sum(t => t.echoes), messagesSent: sum(t => t.messagesSent), retries429: sum(t => t.retries429),
  }
}

/**
 * After a step: go on, or stop. A ramp stops at its first unhealthy step, or with --keep-going
 * only where serving stopped (more than SERVING_STOPPED_SHARE of the step's users failed).
 */
export function stopAfter(config: LoadtestConfig, step: Pick<StepResult, 'slo' | 'servingStopped'>): boolean {
  if (config.keepGoing) return step.servingStopped === true
  return !step.slo.healthy && scenarioOf(config).stopsAtBreakingStep
}

/**
 * What the steps add up to: the first step that broke each SLO (steps whose generator was
 * saturated do not count), the step where serving stopped, the saturated steps, and the breaking
 * point: the first unhealthy step the generator did not limit.
 */
export function summarizeRun(steps: readonly StepResult[]): RunSummary {
  const firstBroken: Record<string, number> = {}
  const firstBrokenSaturated: Record<string, number> = {}
  for (const s of steps) {
    for (const slo of s.slo.broken ?? []) {
      if (s.generator?.saturated) firstBrokenSaturated[slo] ??= s.index
      else firstBroken[slo] ??= s.index
    }
  }
  return {
    firstBroken, firstBrokenSaturated,
    breakingStep: steps.find(s => !s.slo.healthy && !s.generator?.saturated)?.index ?? null,
    servingStoppedAt: steps.find(s => s.servingStopped)?.index ?? null,
    saturatedSteps: steps.filter(s => s.generator?.saturated).map(s => s.index),
    unhealthySteps: steps.filter(s => !s.slo.healthy).map(s => s.index),
  }
}

export async function runStep(config: LoadtestConfig, target: Target, index: number, users: number, sampler: ResourceSampler, live: LiveDisplay, runT0: number, all: UserHandle[]): Promise<StepResult> {
  const recorder = new Recorder()
  const states: Record<string, number> = {}
  const created: UserHandle[] = []
  const generators: GeneratorChildReport[] = []
  const ctx: StepContext = {
    config, target, recorder, users, index, namePrefix: `lt${index}u`, users_: created, generators, autocannon: {},
    onState(from: UserState | undefined, to: UserState) {
      if (from) states[from] = (states[from] ?? 1) - 1
      states[to] = (states[to] ?? 0) + 1
    },
  }
  const fromS = (performance.now() - runT0) / 1000
  const startedAt = new Date().toISOString()
  // the listening sockets' accept queues, every 100 ms for the step (accept-queue.ts)
  const queues = new AcceptQueueSampler({ hub: target.hubPort, proxy: target.publicPort })
  await queues.start()
  let lastSpawns = 0, lastAt = performance.now()
  const tick = setInterval(() => {
    const spawns = recorder.counts().spawn_ok ?? 0
    const now = performance.now()
    const rate = (spawns - lastSpawns) / ((now - lastAt) / 1000)
    lastSpawns = spawns; lastAt = now
    live.update({ elapsedS: (now - runT0) / 1000, step: index, steps: config.steps.length, usersTotal: users, states: { 'not-arrived': users - created.length, ...states }, recorder, resources: sampler.points[sampler.points.length - 1], spawnsPerS: rate })
  }, 1000)
  try {
    await scenarioOf(config).runStep(ctx)
  } finally {
    clearInterval(tick)
    await queues.stop()
    all.push(...created)
  }
  const acceptQueue = queues.empty ? undefined : queues.summary()
  const toS = (performance.now() - runT0) / 1000
  const points = sampler.points.filter(p => p.t >= fromS && p.t <= toS + 0.5)
  const latencies = recorder.latencies()
  const via = recorder.get('probe:via_proxy'), direct = recorder.get('probe:direct')
  const proxyAdded = via && direct && via.count > 0 && direct.count > 0
    ? { p50: Math.round((via.percentile(50) - direct.percentile(50)) * 10) / 10, p99: Math.round((via.percentile(99) - direct.percentile(99)) * 10) / 10, samples: via.count }
    : null
  const resources = summarizeProcesses(points)
  const partial = { counts: recorder.counts(), latencies, proxyAdded, autocannon: ctx.autocannon as Record<string, AutocannonSummary> }
  const scenario = scenarioOf(config)
  const slo = scenario.judge ? verdict(scenario.judge({ ...partial, users })) : judgeStep(config, partial)
  const generator = generatorVerdict(resources, points.map(p => p.loopLagP99), generators, generators.length > 0 ? 0 : created.length)
  const tally = stepTally(created)
  const failed = tally.failed
  return {
    index, users, startedAt, durationS: Math.round((toS - fromS) * 10) / 10, ...partial, notes: recorder.notes(), series: recorder.series(),
    tally,
    resources, loopLagP99Max: Math.max(0, ...points.map(p => p.loopLagP99)),
    pgConnectionsMax: points.some(p => p.pgConnections !== null) ? Math.max(...points.map(p => p.pgConnections ?? 0)) : null,
    ...(acceptQueue ? { acceptQueue } : {}),
    // Limited either by its own CPU, or by waiting for CPU (event-loop lag): then its timings include its own delay.
    generator, generatorLimited: generator.saturated,
    servingStopped: users > 0 && failed > SERVING_STOPPED_SHARE * users,
    slo, fromS: Math.round(fromS * 10) / 10, toS: Math.round(toS * 10) / 10,
  }
}

/** The users a run may hold at once: a ramp carries over the servers and silent websockets of earlier steps. */
export function usersAtOnce(config: Pick<LoadtestConfig, 'steps' | 'compare'>): number {
  return config.compare ? Math.max(...config.steps) : config.steps.reduce((a, b) => a + b, 0)
}

/** Raise the generator's open-file limit (fd-limits.ts) and say at start where a limit allows fewer users than the run may hold. */
export function checkFdLimits(target: Target, config: LoadtestConfig, live: LiveDisplay): FdLimitLine[] {
  // a user step's users split over generator children (--generators), each with its own limit
  const generators = scenarioOf(config).runStep === runUsersStep ? generatorProcesses(config.generators, Math.max(...config.steps)) : 1
  const lines = fdLimitLines(target.processes.map(p => ({ name: p.name, pid: p.pid() })), usersAtOnce(config), { generator: generators })
  for (const l of lines) if (!l.enough) live.message(fdLimitWarning(l))
  return lines
}

/**
 * Until `cleanup`: a SIGINT or SIGTERM interrupts the run (it stops its target and writes what it
 * has); a second one kills every process the target started at once.
 */
function interruptOn(live: LiveDisplay, target: () => Target | undefined): { interrupted: Promise<string>; reason: () => string | undefined; cleanup: () => void } {
  let reason: string | undefined
  let resolve!: (r: string) => void
  const interrupted = new Promise<string>(r => { resolve = r })
  const on = (sig: NodeJS.Signals) => {
    if (reason !== undefined) {
      live.message(`${sig} again: killing every process the run started`)
      target()?.killAllNow?.()
      process.exit(130)
    }
    reason = sig
    live.message(`${sig}: stopping the run, its processes and writing the report (again to kill at once)`)
    resolve(sig)
  }
  process.on('SIGINT', on)
  process.on('SIGTERM', on)
  return { interrupted, reason: () => reason, cleanup: () => { process.off('SIGINT', on); process.off('SIGTERM', on) } }
}

export class RunInterrupted extends Error {
  readonly code = 'LOADTEST_INTERRUPTED'
}

export async function runLoadtest(config: LoadtestConfig, deps: RunDeps): Promise<RunResult> {
  const out = deps.out ?? process.stderr
  const live = new LiveDisplay(out, config.live)
  const missing = config.target === 'jupyterhub' ? jupyterhubUnavailable() : undefined
  if (missing) throw new TargetUnavailable(`--target jupyterhub: ${missing}`) // before any folder is made
  const ownLimit = raiseOwnFdLimit()
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-loadtest-run-'))
  const startedAt = new Date().toISOString()
  const reportDir = await reportDirFor(config.out, config.scenario, config.label)
  const profileDir = path.join(reportDir, 'profile-hub')
  live.message(`fleethub loadtest ${config.scenario}: steps ${config.steps.join(',')}, target ${config.target}, model ${config.model}${config.keepGoing ? ', --keep-going' : ''}`)
  let target: Target | undefined
  let starting: Promise<Target> | undefined
  const signals = deps.handleSignals ? interruptOn(live, () => target) : undefined
  const steps: StepResult[] = []
  const users: UserHandle[] = []
  const window = { fromUs: monotonicUs(), toUs: Infinity }
  let sampler: ResourceSampler | undefined
  let result: RunResult | undefined
  let failure: unknown
  let keptLogs: string[] = []
  try {
    starting = startTarget(config.target, config, profileDir, workDir, deps.log)
    target = await Promise.race([starting, signals?.interrupted.then(r => { throw new RunInterrupted(r) }) ?? new Promise<never>(() => undefined)])
    deps.onTarget?.(target)
    if (target.description.fallback) live.message(`note: ${String(target.description.fallback)}`)
    if (ownLimit) live.message(`open files: the generator may open ${ownLimit.soft} (hard limit ${ownLimit.hard})`)
    const fdLimits = checkFdLimits(target, config, live)
    sampler = new ResourceSampler({ processes: target.processes, pgConnections: target.pgConnections })
    const runT0 = performance.now()
    window.fromUs = monotonicUs()
    sampler.start()
    result = {
      scenario: config.scenario, label: config.label, command: deps.command ?? `fleethub loadtest ${config.scenario}`, startedAt, finishedAt: '',
      config, machine: machineInfo(), versions: { node: process.version, fleethub: gitSha() }, target: target.description, steps, breakingStep: null, resources: sampler.points, fdLimits,
    }
    for (let i = 0; i < config.steps.length; i++) {
      const running = runStep(config, target, i + 1, config.steps[i]!, sampler, live, runT0, users)
      running.catch(() => undefined) // an interrupted step goes on against a stopped target: its end is not waited for
      const step = signals ? await Promise.race([running, signals.interrupted.then(r => { throw new RunInterrupted(r) })]) : await running
      steps.push(step)
      live.message(`step ${i + 1} (${step.users} users): ${step.slo.healthy ? 'healthy' : `UNHEALTHY (${(step.slo.broken ?? []).join(', ')}): ${step.slo.failures.join('; ')}`}${step.generator?.saturated ? ` [generator saturated: ${step.generator.reasons.join('; ')}]` : ''}${step.servingStopped ? ' [serving stopped: more than 5% of users failed]' : ''}${acceptQueueLine(step)}`)
      if (stopAfter(config, step)) break
    }
    window.toUs = monotonicUs()
    await sampler.sample()
    await deps.beforeStop?.(target, result)
  } catch (err) {
    failure = err
  } finally {
    signals?.cleanup()
    await sampler?.stop()
    for (const u of users) u.close()
    // an interrupted step's child generators are not among `users` yet: stop every one
    await stopGeneratorChildren()
    // interrupted while the target was starting: it still comes up (its start is bounded), then goes
    target ??= await starting?.catch(() => undefined)
    await target?.close().catch(err => { failure ??= err })
    // the logs of a run that went wrong stay with its report (keep-logs.ts)
    if (failure !== undefined || steps.some(s => !s.slo.healthy)) {
      keptLogs = await keepLogs(workDir, reportDir).catch(() => [])
      if (keptLogs.length > 0) live.message(`logs kept: ${keptLogs.map(l => path.join(reportDir, l)).join(', ')}`)
    }
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined)
  }
  if (!result || !target) {
    if (target) live.message(`stopped the target: ${(target.pids?.() ?? []).length} processes, ${(target.leftovers?.() ?? []).length} of them by pid at the end`)
    await fs.rm(reportDir, { recursive: true, force: true }).catch(() => undefined)
    throw failure
  }
  // interrupted, or threw after the target was up: the report still says what ran, and why it ended
  const interrupted = failure === undefined ? undefined : failure instanceof RunInterrupted ? failure.message : `error: ${(failure as Error)?.message ?? String(failure)}`
  const profile = target.profileDir ? await keepProfile(target.profileDir, reportDir, profileTitle(config, target), { window, raw: 'hub.cpuprofile.gz' }) : undefined
  if (profile && 'missing' in profile) live.message(`no flamegraph: ${profile.missing}`)
  const flamegraph = profile && !('missing' in profile) ? profile.flamegraph : undefined
  const loadavgAtEnd = os.loadavg().map(l => Math.round(l * 100) / 100)
  const summary = summarizeRun(steps)
  const leftovers = target.leftovers?.() ?? []
  if (leftovers.length > 0) live.message(`outlived their orderly stop, stopped by pid at the end: ${leftovers.map(p => `${p.name} ${p.pid}`).join(', ')}`)
  Object.assign(result, {
    breakingStep: summary.breakingStep, summary, finishedAt: new Date().toISOString(), flamegraph, profile, reportDir, ...(keptLogs.length > 0 ? { logs: keptLogs } : {}), machine: { ...result.machine, loadavgAtEnd },
    processes: target.pids?.() ?? [], leftovers, ...(interrupted ? { interrupted } : {}),
  })
  await writeReport(result, reportDir, path.join(config.out, 'README.md'))
  live.message(`report: ${reportDir}/report.md (.json, .html)`)
  if (failure !== undefined && !(failure instanceof RunInterrupted)) throw failure
  return result
}

/** The flamegraph's title: what ran, with paths relative to the repository (never this machine's). */
export function profileTitle(config: LoadtestConfig, target: Target, step?: number): string {
  const spawner = target.description.spawner === 'kube-sim' ? 'kubernetes' : String(target.description.spawner ?? config.spawner)
  return `fleethub hub, ${config.scenario} ${config.label}${step ? ` step ${step}` : ''} (steps ${config.steps.join(',')}): node --cpu-prof dist/cli/fleethub.js start --spawner ${spawner}`
}

/**
 * The hub's profile next to the report: the flamegraph of `window` and the raw profile (hub-profile.ts),
 * or why there is none.
 */
export async function keepProfile(profileDir: string, reportDir: string, title: string, o: { window?: ProfileWindow; name?: string; raw?: string } = {}): Promise<HubProfile | { missing: string }> {
  const kept = await keepHubProfile(profileDir, reportDir, { repo: REPO, title, ...o })
  return kept ?? { missing: 'the hub wrote no CPU profile (node --cpu-prof writes it when the process exits by itself; it was killed or crashed: see the hub log)' }
}
