/**
 * `--compare jupyterhub`: the same scenario against fleethub and JupyterHub 3.0 on one machine,
 * alternating steps (fleethub step 1, JupyterHub step 1, fleethub step 2, ...), and a report that
 * shows every figure for both with its ratio.
 *
 * Each target is started fresh for each step and stopped after it, so the two hubs never run at
 * the same time: on a 2-core machine an idle hub with thousands of servers reporting activity
 * (and its proxy, its servers, its database) would take CPU from the one being measured. Every
 * step also starts from the same clean state on both sides, and with --profile hub each step gets
 * its own flamegraph. The cost: a start-up per step (not measured), and unlike a single-target
 * ramp a step does not carry the servers earlier steps abandoned. With ramp, a target's steps stop
 * after its first unhealthy step (its breaking point); the other target carries on.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from '../../core/src/log.js'
import type { LoadtestConfig } from './loadtest-config.js'
import { LiveDisplay } from './live.js'
import { appendIndexLine, charts, mdTablesToHtml, renderMarkdown, reportDirFor } from './report.js'
import { ResourceSampler } from './resources.js'
import { acceptQueueLine, checkFdLimits, isHubApiKey, keepProfile, machineInfo, profileTitle, runStep, gitSha, stopAfter, summarizeRun } from './run.js'
import { raiseOwnFdLimit } from './fd-limits.js'
import type { RunResult } from './run-result.js'
import { monotonicUs } from './hub-profile.js'
import type { ProcessSummary, StepResult, UserHandle } from './step.js'
import { stopGeneratorChildren } from './generator/child-generators.js'
import { jupyterhubUnavailable } from './targets/jupyterhub.js'
import { startTarget } from './targets/start-target.js'
import { TargetUnavailable } from './targets/target.js'

export const COMPARED = ['fleethub', 'jupyterhub'] as const
export type Compared = typeof COMPARED[number]

/** One figure of one step, for both targets. `ratio` is fleethub ÷ JupyterHub. */
export interface Figure {
  readonly key: string
  readonly unit: string
  /** Which way is better: `lower` (latency, CPU, failures), `higher` (successes, req/s), `none` (context only). */
  readonly better: 'lower' | 'higher' | 'none'
  readonly fleethub: number | null
  readonly jupyterhub: number | null
  /** fleethub ÷ JupyterHub (rounded to 0.01); 1 when both are 0; null when either is missing or negative, or only JupyterHub's is 0. */
  readonly ratio: number | null
  readonly winner: Compared | 'tie' | null
}

export interface StepComparison {
  readonly index: number
  readonly users: number
  readonly healthy: Readonly<Record<Compared, boolean | null>>
  readonly figures: Figure[]
}

export interface CompareResult {
  readonly kind: 'compare'
  readonly scenario: string
  readonly label: string
  readonly command: string
  readonly startedAt: string
  finishedAt: string
  readonly config: LoadtestConfig
  readonly machine: Readonly<Record<string, unknown>>
  readonly versions: Readonly<Record<string, string>>
  /** How the targets were run, for the report. */
  readonly method: string
  /** Each target's run in the single-target shape (its steps, resources, breaking step). */
  readonly runs: Record<Compared, RunResult>
  readonly steps: StepComparison[]
  reportDir?: string
}

const round2 = (n: number) => Math.round(n * 100) / 100

/** One figure, its ratio and who did better. */
export function figure(key: string, unit: string, better: Figure['better'], f: number | null | undefined, j: number | null | undefined): Figure {
  const fleethub = f ?? null, jupyterhub = j ?? null
  // no ratio of a difference that went negative (proxy added latency within noise) or of x ÷ 0
  const ratio = fleethub === null || jupyterhub === null || fleethub < 0 || jupyterhub < 0 ? null
    : jupyterhub === 0 ? (fleethub === 0 ? 1 : null) : round2(fleethub / jupyterhub)
  let winner: Figure['winner'] = null
  if (fleethub !== null && jupyterhub !== null && better !== 'none') {
    winner = fleethub === jupyterhub ? 'tie' : (fleethub < jupyterhub) === (better === 'lower') ? 'fleethub' : 'jupyterhub'
  }
  return { key, unit, better, fleethub, jupyterhub, ratio, winner }
}

function hubP99(s: StepResult): number | null {
  const xs = [...Object.entries(s.latencies).filter(([k, l]) => isHubApiKey(k) && l.count > 0).map(([, l]) => l.p99),
    ...Object.entries(s.autocannon).filter(([k]) => k.includes('/hub/')).map(([, a]) => a.p99)]
  return xs.length > 0 ? Math.max(...xs) : null
}

/** Every figure of one step that both targets ran. Pure: the report's ratios come from here. */
export function compareStep(f: StepResult | undefined, j: StepResult | undefined): Figure[] {
  const out: Figure[] = []
  const both = (get: (s: StepResult) => number | null | undefined) => [f ? get(f) : null, j ? get(j) : null] as const
  out.push(figure('users failed', 'users', 'lower', ...both(s => s.tally.failed)))
  if ((f?.tally.users ?? 0) > 0 || (j?.tally.users ?? 0) > 0) {
    out.push(figure('logins', 'users', 'higher', ...both(s => s.tally.loggedIn)))
    out.push(figure('spawns', 'servers', 'higher', ...both(s => s.tally.spawned)))
    out.push(figure('websocket echoes', 'echoes', 'higher', ...both(s => s.tally.echoes)))
    out.push(figure('spawn requests answered 429', 'requests', 'lower', ...both(s => s.tally.retries429)))
  }
  out.push(figure('5xx responses', 'responses', 'lower', ...both(s => s.counts['error:5xx'] ?? 0)))
  for (const [phase, label] of [['login', 'login'], ['spawn', 'spawn (request to ready)'], ['first_page', 'first page (with OAuth)'], ['ws_echo', 'websocket echo'], ['stop', 'stop']] as const) {
    const k = `phase:${phase}`
    if (!f?.latencies[k] && !j?.latencies[k]) continue
    out.push(figure(`${label} p50`, 'ms', 'lower', ...both(s => s.latencies[k]?.p50)))
    out.push(figure(`${label} p99`, 'ms', 'lower', ...both(s => s.latencies[k]?.p99)))
  }
  out.push(figure('hub API p99 (worst endpoint)', 'ms', 'lower', ...both(hubP99)))
  if (f?.proxyAdded || j?.proxyAdded) out.push(figure('proxy added latency p99', 'ms', 'lower', ...both(s => s.proxyAdded?.p99)))
  const endpoints = [...new Set([...Object.keys(f?.autocannon ?? {}), ...Object.keys(j?.autocannon ?? {})])]
  for (const e of endpoints) {
    out.push(figure(`${e} req/s`, 'req/s', 'higher', ...both(s => s.autocannon[e]?.rps)))
    out.push(figure(`${e} p99`, 'ms', 'lower', ...both(s => s.autocannon[e]?.p99)))
    out.push(figure(`${e} non-2xx`, 'responses', 'lower', ...both(s => s.autocannon[e]?.non2xx)))
  }
  for (const port of ['hub', 'proxy'] as const) {
    if (!f?.acceptQueue?.[port] && !j?.acceptQueue?.[port]) continue
    out.push(figure(`${port} accept queue max`, 'connections', 'lower', ...both(s => s.acceptQueue?.[port]?.max)))
    out.push(figure(`${port} accept queue p99`, 'connections', 'lower', ...both(s => s.acceptQueue?.[port]?.p99)))
  }
  // with --workers N, fleethub's hub is the primary ('hub') plus its workers ('hub-workers'): summed
  const hub = (s: StepResult, f: (p: ProcessSummary) => number): number | null =>
    s.resources.hub ? round1(f(s.resources.hub) + (s.resources['hub-workers'] ? f(s.resources['hub-workers']) : 0)) : null
  out.push(figure('hub CPU mean', '% of a core', 'lower', ...both(s => hub(s, p => p.cpuMean))))
  out.push(figure('hub CPU max (sum of its processes\' maxima)', '% of a core', 'lower', ...both(s => hub(s, p => p.cpuMax))))
  // fleethub's database is a Postgres process tree; JupyterHub's is too with --jupyterhub-db postgres, else sqlite inside the hub process
  out.push(figure('hub + database CPU mean', '% of a core', 'lower', ...both(s => { const h = hub(s, p => p.cpuMean); return h === null ? null : round1(h + (s.resources.postgres?.cpuMean ?? 0)) })))
  out.push(figure('hub RSS max', 'MB', 'lower', ...both(s => hub(s, p => p.rssMaxMb))))
  out.push(figure('hub open fds max', 'fds', 'lower', ...both(s => hub(s, p => p.fdsMax))))
  out.push(figure('proxy CPU mean', '% of a core', 'lower', ...both(s => s.resources.proxy?.cpuMean)))
  out.push(figure('proxy RSS max', 'MB', 'lower', ...both(s => s.resources.proxy?.rssMaxMb)))
  out.push(figure('generator CPU mean', '% of a core', 'none', ...both(s => s.resources.generator?.cpuMean)))
  return out
}

const round1 = (n: number): number => Math.round(n * 10) / 10

const NAMES: Record<Compared, string> = { fleethub: 'fleethub', jupyterhub: 'JupyterHub' }
const rawProfileName = (step: number) => `hub-fleethub-step${step}.cpuprofile.gz`
const fmt = (n: number | null) => n === null ? '-' : String(n)

export function renderCompareMarkdown(c: CompareResult): string {
  const cfg = c.config
  const f = c.runs.fleethub, j = c.runs.jupyterhub
  const verdict = (r: RunResult) => r.breakingStep === null ? `every step held (${r.steps.length} run)` : `broke at step ${r.breakingStep} (${r.steps[r.breakingStep - 1]?.users} users)`
  const profiles = cfg.profile === 'hub'
    ? `fleethub's hub ran under node --cpu-prof at every step (flamegraph links in the step tables); JupyterHub was not profiled (py-spy is not installed here).`
    : 'No profiling (--profile none).'
  const lines = [
    `# Load test: ${c.scenario} (${c.label}), fleethub vs JupyterHub`, '',
    `Command: \`${c.command}\``, '',
    `Started ${c.startedAt}, finished ${c.finishedAt}. fleethub ${c.versions.fleethub}, Node ${c.versions.node}; JupyterHub ${String(j.target.jupyterhub ?? '?')} with ${String(j.target.proxy ?? 'configurable-http-proxy')}.`,
    `Machine: ${c.machine.cores} cores (${String(c.machine.cpu)}), ${c.machine.memoryGiB} GiB, load average at start ${(c.machine.loadavgAtStart as number[]).join(' ')}, at the end ${((c.machine.loadavgAtEnd as number[] | undefined) ?? []).join(' ')} (shared machine).`,
    `fleethub: ${Object.entries(f.target).map(([k, v]) => `${k}=${String(v)}`).join(', ')}.`,
    `JupyterHub: ${Object.entries(j.target).map(([k, v]) => `${k}=${String(v)}`).join(', ')}.`,
    `Both hubs got the same virtual single-user servers (spawner/src/singleuser) on their own loopback addresses, with the same start time (${cfg.serverStartTime.min / 1000}-${cfg.serverStartTime.max / 1000} s): fleethub's from kube-sim${f.target.simulatedCluster === true ? ' (a simulated cluster)' : ' (NOT used: fleethub ran the ' + String(f.target.spawner) + ' spawner)'}, JupyterHub's from sim-servers. The simulated users ran the same code against both.`,
    `Parameters: steps ${cfg.steps.join(',')}, arrival ${cfg.arrivalMs / 1000} s, duration ${cfg.durationMs / 1000} s, leave ${Object.entries(cfg.leaveMix).map(([k, v]) => `${k}=${Math.round(v * 100) / 100}`).join(',')}, activity interval ${cfg.activityIntervalMs / 1000} s, message every ${cfg.messageIntervalMs / 1000} s (${cfg.messageBytes} B), HTTP every ${cfg.httpIntervalMs / 1000} s, connections ${cfg.connections}, concurrent spawn limit ${cfg.concurrentSpawnLimit}.`,
    `Method: ${c.method}`, '',
    `Result: fleethub ${verdict(f)}; JupyterHub ${verdict(j)}. ${profiles}`, '',
    'Ratios are **fleethub ÷ JupyterHub**. For latencies, CPU, memory, failures and 429s lower is better, so a ratio under 1 means fleethub did better; for logins, spawns, echoes and req/s higher is better, so a ratio over 1 means fleethub did better. The last column names the better one.', '',
  ]
  for (const s of c.steps) {
    const h = (t: Compared) => s.healthy[t] === null ? 'not run' : s.healthy[t] ? 'healthy' : '**UNHEALTHY**'
    lines.push(`## Step ${s.index}: ${s.users} users — fleethub ${h('fleethub')}, JupyterHub ${h('jupyterhub')}`, '')
    const fg = f.steps.find(x => x.index === s.index)?.flamegraph
    if (fg) lines.push(`fleethub hub flamegraph: [${path.basename(fg)}](${path.basename(fg)}), raw profile [${rawProfileName(s.index)}](${rawProfileName(s.index)}). JupyterHub: not profiled.`, '')
    lines.push('| figure | unit | better | fleethub | JupyterHub | fleethub ÷ JupyterHub | better one |', '| --- | --- | --- | ---: | ---: | ---: | --- |',
      ...s.figures.map(x => `| ${x.key} | ${x.unit} | ${x.better} | ${fmt(x.fleethub)} | ${fmt(x.jupyterhub)} | ${fmt(x.ratio)} | ${x.winner === null ? '-' : x.winner === 'tie' ? 'tie' : NAMES[x.winner]} |`), '')
  }
  // each target's own report (the single-target shape), one heading level down
  const demote = (md: string) => md.split('\n').map(l => /^#{1,5} /.test(l) ? `#${l}` : l).join('\n')
  lines.push('# Each target in detail', '', demote(renderMarkdown(f)).replace(/^## Load test: /, '## fleethub: '), '', demote(renderMarkdown(j)).replace(/^## Load test: /, '## JupyterHub: '))
  return lines.join('\n')
}

export function renderCompareHtml(c: CompareResult, md: string): string {
  const [head = '', ...rest] = md.split('\n# Each target in detail')
  const detail = rest.join('')
  const [fmd = '', jmd = ''] = detail.split('\n## JupyterHub: ')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fleethub vs JupyterHub: ${c.scenario} ${c.label}</title>
<style>body{font:14px system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th:first-child,td:first-child{text-align:left}code{background:#f4f4f4}svg{display:block;margin:1em 0}</style></head><body>
${mdTablesToHtml(head)}
<h1>fleethub over time</h1>
${charts(c.runs.fleethub).join('\n')}
<h1>JupyterHub over time</h1>
${charts(c.runs.jupyterhub).join('\n')}
<h1>Each target in detail</h1>
${mdTablesToHtml(fmd)}
${mdTablesToHtml('## JupyterHub: ' + jmd)}
</body></html>
`
}

export async function writeCompareReport(c: CompareResult, dir: string, indexFile: string): Promise<void> {
  const md = renderCompareMarkdown(c)
  await fs.writeFile(path.join(dir, 'report.json'), JSON.stringify(c, null, 1) + '\n')
  await fs.writeFile(path.join(dir, 'report.md'), md + '\n')
  await fs.writeFile(path.join(dir, 'report.html'), renderCompareHtml(c, md))
  const v = (r: RunResult) => r.breakingStep === null ? 'healthy' : `step ${r.breakingStep} unhealthy`
  await appendIndexLine(indexFile, dir, `${c.scenario} (compare)`, c.config.steps.join(','), `fleethub ${v(c.runs.fleethub)}, JupyterHub ${v(c.runs.jupyterhub)}`, c.command)
}

export const COMPARE_METHOD = 'alternating steps (fleethub step 1, JupyterHub step 1, fleethub step 2, ...); each target started fresh for its step and stopped after it, so the two hubs never ran at the same time and every step started from the same clean state (a step does not carry servers that earlier steps abandoned); with ramp a target stops after its first unhealthy step.'

export interface CompareDeps {
  readonly log: Logger
  readonly out?: NodeJS.WritableStream
  readonly command?: string
}

export async function runCompare(config: LoadtestConfig, deps: CompareDeps): Promise<CompareResult> {
  const missing = jupyterhubUnavailable()
  if (missing) throw new TargetUnavailable(`--compare jupyterhub: ${missing}`)
  const live = new LiveDisplay(deps.out ?? process.stderr, config.live)
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-loadtest-compare-'))
  const reportDir = await reportDirFor(config.out, config.scenario, config.label.endsWith(`-vs-jupyterhub`) ? config.label : `${config.label}-vs-jupyterhub`)
  const command = deps.command ?? `fleethub loadtest ${config.scenario} --compare jupyterhub`
  const startedAt = new Date().toISOString()
  const versions = { node: process.version, fleethub: gitSha() }
  const machine = machineInfo()
  const runs = {} as Record<Compared, RunResult>
  for (const t of COMPARED) {
    runs[t] = { scenario: config.scenario, label: config.label, command, startedAt, finishedAt: '', config, machine, versions, target: {}, steps: [], breakingStep: null, resources: [] }
  }
  const runT0 = performance.now()
  raiseOwnFdLimit()
  const stopped = new Set<Compared>()
  live.message(`fleethub loadtest ${config.scenario} --compare jupyterhub: steps ${config.steps.join(',')}, alternating, each target fresh per step`)
  try {
    for (let i = 0; i < config.steps.length; i++) {
      for (const t of COMPARED) {
        const run = runs[t]
        if (stopped.has(t)) continue
        const profileDir = t === 'fleethub' && config.profile === 'hub' ? path.join(reportDir, `profile-hub-step${i + 1}`) : undefined
        live.message(`[${NAMES[t]}] step ${i + 1} (${config.steps[i]} users): starting the target`)
        const target = await startTarget(t, config, profileDir, workDir, deps.log)
        if (Object.keys(run.target).length === 0) Object.assign(run.target, target.description)
        if (i === 0) Object.assign(run, { fdLimits: checkFdLimits(target, config, live) })
        const sampler = new ResourceSampler({ processes: target.processes, pgConnections: target.pgConnections, t0: runT0 })
        sampler.start()
        const users: UserHandle[] = []
        let step: StepResult
        const window = { fromUs: monotonicUs(), toUs: Infinity }
        try {
          step = await runStep(config, target, i + 1, config.steps[i]!, sampler, live, runT0, users)
          window.toUs = monotonicUs()
          await sampler.sample()
        } finally {
          await sampler.stop()
          for (const u of users) u.close()
          await stopGeneratorChildren()
          await target.close()
        }
        if (profileDir) {
          const kept = await keepProfile(profileDir, reportDir, profileTitle(config, target, i + 1), { window, name: `flamegraph-fleethub-step${i + 1}.html`, raw: rawProfileName(i + 1) })
          if ('missing' in kept) live.message(`[fleethub] step ${i + 1}: no flamegraph: ${kept.missing}`)
          else step.flamegraph = kept.flamegraph
        }
        run.steps.push(step)
        run.resources.push(...sampler.points)
        live.message(`[${NAMES[t]}] step ${i + 1} (${step.users} users): ${step.slo.healthy ? 'healthy' : `UNHEALTHY: ${step.slo.failures.join('; ')}`}${step.generatorLimited ? ' [generator-limited]' : ''}${acceptQueueLine(step)}`)
        if (stopAfter(config, step)) stopped.add(t)
        const summary = summarizeRun(run.steps)
        Object.assign(run, { summary, breakingStep: summary.breakingStep })
      }
    }
  } finally {
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined)
  }
  const loadavgAtEnd = os.loadavg().map(l => Math.round(l * 100) / 100)
  const finishedAt = new Date().toISOString()
  for (const t of COMPARED) Object.assign(runs[t], { finishedAt, machine: { ...machine, loadavgAtEnd } })
  const steps: StepComparison[] = config.steps.map((users, k) => {
    const fs_ = runs.fleethub.steps.find(s => s.index === k + 1), js = runs.jupyterhub.steps.find(s => s.index === k + 1)
    return { index: k + 1, users, healthy: { fleethub: fs_ ? fs_.slo.healthy : null, jupyterhub: js ? js.slo.healthy : null }, figures: compareStep(fs_, js) }
  }).filter(s => s.healthy.fleethub !== null || s.healthy.jupyterhub !== null)
  const result: CompareResult = {
    kind: 'compare', scenario: config.scenario, label: config.label, command, startedAt, finishedAt, config,
    machine: { ...machine, loadavgAtEnd }, versions, method: COMPARE_METHOD, runs, steps, reportDir,
  }
  await writeCompareReport(result, reportDir, path.join(config.out, 'README.md'))
  live.message(`report: ${reportDir}/report.md (.json, .html)`)
  return result
}
