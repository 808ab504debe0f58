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
import type { SimulatedUser, UserState } from './simulated-user.js'
import { keepHubProfile, monotonicUs, type HubProfile } from './hub-profile.js'
import type { ProfileWindow } from './flamegraph.js'
import type { RunResult } from './run-result.js'
import type { AutocannonSummary, ProcessSummary, StepContext, StepResult } from './step.js'
import { reportDirFor, writeReport } from './report.js'
import { jupyterhubUnavailable } from './targets/jupyterhub.js'
import { REPO } from './targets/processes.js'
import { startTarget } from './targets/start-target.js'
import { TargetUnavailable, type Target } from './targets/target.js'

export interface RunDeps {
  readonly log: Logger
  readonly out?: NodeJS.WritableStream
  /** The exact command line, for the report. */
  readonly command?: string
  /** Called with the running target after the last step, before it is stopped (tests read the database here). */
  readonly beforeStop?: (target: Target, result: RunResult) => Promise<void>
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

/** The SLO verdict of one step (shared/LOADTEST.md: no failed spawn, no 5xx, no dropped websocket, p99 bounds). */
export function judgeStep(config: LoadtestConfig, s: Pick<StepResult, 'counts' | 'latencies' | 'proxyAdded' | 'autocannon'>): { healthy: boolean; failures: string[] } {
  const f: string[] = []
  const c = s.counts
  const failedUsers = Object.entries(c).filter(([k]) => k.startsWith('failed:')).reduce((a, [, n]) => a + n, 0)
  if (failedUsers > 0) f.push(`${failedUsers} users failed (${Object.entries(c).filter(([k]) => k.startsWith('failed:')).map(([k, n]) => `${k.slice(7)}=${n}`).join(', ')})`)
  if ((c['error:5xx'] ?? 0) > 0) f.push(`${c['error:5xx']} responses were 5xx`)
  if ((c['error:ws_dropped'] ?? 0) > 0) f.push(`${c['error:ws_dropped']} websockets dropped`)
  for (const [k, a] of Object.entries(s.autocannon)) {
    if (a.non2xx > 0 || a.errors > 0) f.push(`${k}: ${a.non2xx} non-2xx, ${a.errors} errors`)
  }
  const hubP99 = Math.max(0, ...Object.entries(s.latencies).filter(([k]) => isHubApiKey(k)).map(([, l]) => l.p99),
    ...Object.entries(s.autocannon).filter(([k]) => k.includes('/hub/')).map(([, a]) => a.p99))
  if (hubP99 > config.slo.hubApiP99Ms) f.push(`hub p99 ${hubP99} ms > ${config.slo.hubApiP99Ms} ms`)
  if (s.proxyAdded && s.proxyAdded.p99 > config.slo.proxyAddedP99Ms) f.push(`proxy added p99 ${s.proxyAdded.p99} ms > ${config.slo.proxyAddedP99Ms} ms`)
  const echo = s.latencies['phase:ws_echo']
  if (echo && echo.count > 0 && echo.p99 > config.slo.wsEchoP99Ms) f.push(`websocket echo p99 ${echo.p99} ms > ${config.slo.wsEchoP99Ms} ms`)
  return { healthy: f.length === 0, failures: f }
}

export async function runStep(config: LoadtestConfig, target: Target, index: number, users: number, sampler: ResourceSampler, live: LiveDisplay, runT0: number, all: SimulatedUser[]): Promise<StepResult> {
  const recorder = new Recorder()
  const states: Record<string, number> = {}
  const created: SimulatedUser[] = []
  const ctx: StepContext = {
    config, target, recorder, users, index, namePrefix: `lt${index}u`, users_: created, autocannon: {},
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
  const tallies = created.map(u => u.tally)
  const sum = (f: (t: typeof tallies[number]) => number) => tallies.reduce((a, t) => a + f(t), 0)
  const resources = summarizeProcesses(points)
  const partial = { counts: recorder.counts(), latencies, proxyAdded, autocannon: ctx.autocannon as Record<string, AutocannonSummary> }
  return {
    index, users, startedAt, durationS: Math.round((toS - fromS) * 10) / 10, ...partial, notes: recorder.notes(), series: recorder.series(),
    tally: {
      users: created.length, loggedIn: sum(t => Number(t.loggedIn)), spawned: sum(t => Number(t.spawned)), stopped: sum(t => Number(t.stopped)),
      failed: created.filter(u => u.state === 'failed').length, echoes: sum(t => t.echoes), messagesSent: sum(t => t.messagesSent), retries429: sum(t => t.retries429),
    },
    resources, loopLagP99Max: Math.max(0, ...points.map(p => p.loopLagP99)),
    pgConnectionsMax: points.some(p => p.pgConnections !== null) ? Math.max(...points.map(p => p.pgConnections ?? 0)) : null,
    ...(acceptQueue ? { acceptQueue } : {}),
    // Limited either by its own CPU, or by waiting for CPU (event-loop lag): then its timings include its own delay.
    generatorLimited: (resources.generator?.cpuMean ?? 0) >= GENERATOR_LIMIT_CPU || median(points.map(p => p.loopLagP99)) > GENERATOR_LIMIT_LAG_MS,
    slo: judgeStep(config, partial), fromS: Math.round(fromS * 10) / 10, toS: Math.round(toS * 10) / 10,
  }
}

export async function runLoadtest(config: LoadtestConfig, deps: RunDeps): Promise<RunResult> {
  const out = deps.out ?? process.stderr
  const live = new LiveDisplay(out, config.live)
  const missing = config.target === 'jupyterhub' ? jupyterhubUnavailable() : undefined
  if (missing) throw new TargetUnavailable(`--target jupyterhub: ${missing}`) // before any folder is made
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-loadtest-run-'))
  const startedAt = new Date().toISOString()
  const reportDir = await reportDirFor(config.out, config.scenario, config.label)
  const profileDir = path.join(reportDir, 'profile-hub')
  live.message(`fleethub loadtest ${config.scenario}: steps ${config.steps.join(',')}, target ${config.target}`)
  const target = await startTarget(config.target, config, profileDir, workDir, deps.log)
  if (target.description.fallback) live.message(`note: ${String(target.description.fallback)}`)
  const sampler = new ResourceSampler({ processes: target.processes, pgConnections: target.pgConnections })
  const runT0 = performance.now()
  const window = { fromUs: monotonicUs(), toUs: Infinity }
  sampler.start()
  const steps: StepResult[] = []
  const users: SimulatedUser[] = []
  let breakingStep: number | null = null
  const result: RunResult = {
    scenario: config.scenario, label: config.label, command: deps.command ?? `fleethub loadtest ${config.scenario}`, startedAt, finishedAt: '',
    config, machine: machineInfo(), versions: { node: process.version, fleethub: gitSha() }, target: target.description, steps, breakingStep: null, resources: sampler.points,
  }
  try {
    for (let i = 0; i < config.steps.length; i++) {
      const step = await runStep(config, target, i + 1, config.steps[i]!, sampler, live, runT0, users)
      steps.push(step)
      live.message(`step ${i + 1} (${step.users} users): ${step.slo.healthy ? 'healthy' : `UNHEALTHY: ${step.slo.failures.join('; ')}`}${step.generatorLimited ? ' [generator-limited]' : ''}${acceptQueueLine(step)}`)
      if (!step.slo.healthy && breakingStep === null) {
        breakingStep = i + 1
        if (scenarioOf(config).stopsAtBreakingStep) break
      }
    }
    window.toUs = monotonicUs()
    await sampler.sample()
    await deps.beforeStop?.(target, result)
  } finally {
    await sampler.stop()
    for (const u of users) u.close()
    await target.close()
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined)
  }
  const profile = target.profileDir ? await keepProfile(target.profileDir, reportDir, profileTitle(config, target), { window, raw: 'hub.cpuprofile.gz' }) : undefined
  if (profile && 'missing' in profile) live.message(`no flamegraph: ${profile.missing}`)
  const flamegraph = profile && !('missing' in profile) ? profile.flamegraph : undefined
  const loadavgAtEnd = os.loadavg().map(l => Math.round(l * 100) / 100)
  Object.assign(result, { breakingStep, finishedAt: new Date().toISOString(), flamegraph, profile, reportDir, machine: { ...result.machine, loadavgAtEnd } })
  await writeReport(result, reportDir, path.join(config.out, 'README.md'))
  live.message(`report: ${reportDir}/report.md (.json, .html)`)
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
