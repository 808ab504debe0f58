/**
 * The run's report in `bench-results/<date>-<scenario>-<label>/`: report.json (everything),
 * report.md (the tables), report.html (self-contained: inline SVG charts of latency, throughput
 * and resources over time, and the per-step summary), plus a line in bench-results/README.md.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { LatencySummary } from './histogram.js'
import type { RunResult } from './run-result.js'
import { MODELS } from './loadtest-config.js'
import { findScenario } from './scenarios/index.js'
import type { GeneratorVerdict, StepResult } from './step.js'
import { lineChart, type ChartSeries } from './svg-chart.js'
import { escapeHtml } from '../../core/src/html.js'

/** A fresh folder `<out>/<date>-<scenario>-<label>[-n]` (never overwrites an earlier run). */
export async function reportDirFor(out: string, scenario: string, label: string, date = new Date()): Promise<string> {
  const base = path.join(out, `${date.toISOString().slice(0, 10)}-${scenario}-${label}`)
  for (let n = 1; n < 1000; n++) {
    const dir = n === 1 ? base : `${base}-${n}`
    try {
      await fs.mkdir(dir, { recursive: false })
      return dir
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') { await fs.mkdir(out, { recursive: true }); n--; continue }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  throw new Error(`no free report folder for ${base}`)
}

const fmt = (n: number | null | undefined) => n === null || n === undefined ? '-' : String(n)
const queueCell = (q: { max: number; p99: number } | undefined) => q ? `${q.max} / ${q.p99}` : '-'

function latencyRows(l: Record<string, LatencySummary>): string[] {
  return Object.entries(l).map(([k, s]) => `| ${k} | ${s.count} | ${s.errors} | ${s.p50} | ${s.p90} | ${s.p99} | ${s.max} |`)
}

/** The cull and restart scenarios' answers in a sentence each (their counters and phases). */
function scenarioLines(s: StepResult): string[] {
  const c = s.counts, l = s.latencies
  const out: string[] = []
  if (c['cull:active_checked'] !== undefined) {
    out.push(`**Cull**: ${c['cull:idle_culled'] ?? 0} idle servers culled${c['cull:idle_not_culled'] ? `, **${c['cull:idle_not_culled']} not culled**` : ''}; from idle to culled p50 ${fmt(l['phase:cull']?.p50)} ms, max ${fmt(l['phase:cull']?.max)} ms; all culled ${fmt(l['phase:cull_all']?.max)} ms after the first went idle. Active servers culled: ${c['cull:active_culled'] ?? 0} of ${c['cull:active_checked']}.`, '')
  }
  if (c['restart:users_checked'] !== undefined) {
    const per = (['proxy', 'hub', 'postgres'] as const).map(k => `${k} up again after ${fmt(l[`phase:restart_${k}`]?.max)} ms, every user served after ${l[`phase:recovery_${k}`] ? `${l[`phase:recovery_${k}`]!.max} ms` : '**never**'}`)
    out.push(`**Restart** (each killed in turn): ${per.join('; ')}. Of ${c['restart:users_checked']} users checked after the last outage: sessions lost ${c['restart:sessions_lost'] ?? 0}, servers lost ${c['restart:servers_lost'] ?? 0}, servers unreachable ${c['restart:servers_unreachable'] ?? 0}; websockets reopened ${c['restart:ws_reopened'] ?? 0}.`, '')
  }
  return out
}

/** How many generator processes ran the step, their busiest CPU, and each one's share (--generators). */
function generatorProcessesLine(ps: NonNullable<GeneratorVerdict['processes']>): string {
  const maxCpu = Math.max(...ps.map(p => p.cpuMean))
  if (ps.length === 1) return `Generator processes: 1 (the users ran in the runner's process), CPU ${maxCpu}% of a core.`
  return `Generator processes: ${ps.length} (the runner and ${ps.length - 1} children), max CPU ${maxCpu}% of a core (mean over the step): ` +
    ps.map(p => `${p.name}${p.pid ? ` (pid ${p.pid})` : ''} ${p.users} users, CPU ${p.cpuMean}%, lag p99 ${p.lagP99Median} ms${p.crashed ? `, **exited early (${p.crashed})**` : ''}`).join('; ') + '.'
}

/** The process-table rows that make up a part of the system: the hub is its primary plus its workers. */
const CAPACITY_PARTS: ReadonlyArray<readonly [string, readonly string[]]> = [['hub', ['hub', 'hub-workers']], ['proxy', ['proxy']]]

/**
 * Issue #16's capacity figures for a step: per part, CPU seconds per 1,000 users per minute (its mean
 * CPU over the step, so arrivals and the leave are included) and RSS per 1,000 users (its peak, the
 * process's baseline included). `users` is the step's own users; a ramp's earlier steps may leave
 * servers running that cost a little on top. Undefined when no part was sampled.
 */
export function capacityFigures(s: Pick<StepResult, 'users' | 'resources'>): Array<{ part: string; cpuSecondsPer1kUsersPerMinute: number; rssMbPer1kUsers: number }> | undefined {
  if (s.users <= 0) return undefined
  const k = s.users / 1000
  const out = CAPACITY_PARTS.flatMap(([part, names]) => {
    const rows = names.map(n => s.resources[n]).filter((p): p is NonNullable<typeof p> => p !== undefined)
    if (rows.length === 0) return []
    const cpu = rows.reduce((a, p) => a + p.cpuMean, 0) / 100 * 60
    const rss = rows.reduce((a, p) => a + p.rssMaxMb, 0)
    return [{ part, cpuSecondsPer1kUsersPerMinute: Math.round(cpu / k * 10) / 10, rssMbPer1kUsers: Math.round(rss / k * 10) / 10 }]
  })
  return out.length > 0 ? out : undefined
}

function capacityLine(s: StepResult): string[] {
  const c = capacityFigures(s)
  if (!c) return []
  return [`Capacity: ${c.map(x => `${x.part} ${x.cpuSecondsPer1kUsersPerMinute} CPU-s per 1,000 users per minute (so one core holds about ${x.cpuSecondsPer1kUsersPerMinute > 0 ? Math.round(60 / x.cpuSecondsPer1kUsersPerMinute * 1000).toLocaleString('en-US') : '-'} such users), ${x.rssMbPer1kUsers} MB RSS per 1,000 users (peak, baseline included)`).join('; ')}. An estimate from one step.`, '']
}

function stepMarkdown(s: StepResult): string {
  const g = s.generator
  const saturated = g ? g.saturated : s.generatorLimited
  const lines = [`### Step ${s.index}: ${s.users} users, ${s.durationS} s — ${s.slo.healthy ? 'healthy' : `**UNHEALTHY** (${(s.slo.broken ?? []).join(', ')})`}${saturated ? ' (**generator saturated**: not counted as the system\'s limit)' : ''}${s.servingStopped ? ' — **serving stopped** (more than 5% of users failed)' : ''}`, '']
  if (!s.slo.healthy) lines.push(...s.slo.failures.map(f => `- SLO failed: ${f}`), '')
  if (g) lines.push(`Generator: CPU ${g.cpuMean}% of a core (mean), event-loop lag p99 ${g.lagP99Median} ms in the median second, ${g.lagP99Max} ms in the worst: ${g.saturated ? `**saturated** (${g.reasons.join('; ')}); its latencies include its own queueing` : 'not saturated (thresholds: CPU 85% of a core, lag p99 100 ms in the median second)'}.`, '')
  if (g?.processes) lines.push(generatorProcessesLine(g.processes), '')
  for (const [k, msgs] of Object.entries(s.notes)) lines.push(`- example of \`${k}\`: ${msgs[0]}`)
  if (Object.keys(s.notes).length > 0) lines.push('')
  lines.push(...scenarioLines(s))
  const t = s.tally
  lines.push(`Users: ${t.users} arrived, ${t.loggedIn} logged in, ${t.spawned} spawned, ${t.stopped} stopped tidily, ${t.failed} failed; ${t.echoes} websocket echoes of ${t.messagesSent} messages; ${t.retries429} spawn requests answered 429 and retried.`, '')
  if (s.proxyAdded) lines.push(`Proxy added latency (GET /hub/api/ through the proxy minus direct, ${s.proxyAdded.samples} probes): p50 ${s.proxyAdded.p50} ms, p99 ${s.proxyAdded.p99} ms.`, '')
  if (Object.keys(s.latencies).length > 0) {
    lines.push('| key | count | errors | p50 ms | p90 ms | p99 ms | max ms |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |', ...latencyRows(s.latencies), '')
  }
  if (Object.keys(s.autocannon).length > 0) {
    lines.push('| endpoint (autocannon) | connections | s | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(s.autocannon).map(([k, a]) => `| ${k} | ${a.connections} | ${a.durationS} | ${a.requests} | ${a.rps} | ${a.p50} | ${a.p90} | ${a.p99} | ${a.max} | ${a.non2xx} | ${a.errors} |`), '')
  }
  lines.push('| process | CPU mean % | CPU max % | RSS max MB | fds max | fd limit | fds / limit | processes |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...Object.entries(s.resources).map(([k, p]) => `| ${k} | ${p.cpuMean} | ${p.cpuMax} | ${p.rssMaxMb} | ${p.fdsMax} | ${fmt(p.fdLimit)} | ${p.fdLimit && p.procsMax <= 1 ? `${Math.round(p.fdsMax / p.fdLimit * 1000) / 10}%` : '-'} | ${p.procsMax} |`), '',
    'fd limit: the root process\'s RLIMIT_NOFILE soft limit (/proc/<pid>/limits); for a process tree (postgres, user servers) fds max is the sum over the tree, so no share is given.', '',
    `Generator event-loop lag p99 (worst second): ${s.loopLagP99Max} ms. Postgres connections in use (max): ${fmt(s.pgConnectionsMax)}.`, '',
    ...capacityLine(s),
    ...(s.acceptQueue ? [`Accept queue: ${(['hub', 'proxy'] as const).map(k => { const q = s.acceptQueue![k]; return q ? `${k} port ${q.port} (a sample every ${q.intervalMs} ms): max ${q.max}, p99 ${q.p99}, p90 ${q.p90}, mean ${q.mean}, non-empty in ${Math.round(q.nonEmpty * 1000) / 10}% of ${q.samples} samples` : `${k}: not seen listening` }).join('; ')}.`, ''] : []),
    'Outcomes: ' + Object.entries(s.counts).map(([k, n]) => `\`${k}\` ${n}`).join(', '), '')
  return lines.join('\n')
}

export function renderMarkdown(r: RunResult): string {
  const c = r.config
  const simulated = r.target.simulatedCluster === true ? 'yes (kube-sim: a simulated Kubernetes API server and kubelet)'
    : r.target.kind === 'jupyterhub' ? 'no (no cluster: virtual servers in sim-servers)'
    : r.target.simulatedCluster === false ? 'no (no cluster: local processes)' : 'unknown'
  const head = [
    `# Load test: ${r.scenario} (${r.label})`, '',
    `Command: \`${r.command}\``, '',
    `Started ${r.startedAt}, finished ${r.finishedAt}. fleethub ${r.versions.fleethub}, Node ${r.versions.node}.`,
    `Machine: ${r.machine.cores} cores (${String(r.machine.cpu)}), ${r.machine.memoryGiB} GiB, load average at start ${(r.machine.loadavgAtStart as number[]).join(' ')}, at the end ${((r.machine.loadavgAtEnd as number[] | undefined) ?? []).join(' ')} (shared machine: other work ran at the same time; a load average above the core count means every process here, the generator included, waited for CPU).`,
    `Target: ${Object.entries(r.target).map(([k, v]) => `${k}=${String(v)}`).join(', ')}. Simulated cluster: ${simulated}.`,
    `Parameters: steps ${c.steps.join(',')}, arrival ${c.arrivalMs / 1000} s, duration ${c.durationMs / 1000} s, leave ${Object.entries(c.leaveMix).map(([k, v]) => `${k}=${Math.round(v * 100) / 100}`).join(',')}, activity interval ${c.activityIntervalMs / 1000} s, message every ${c.messageIntervalMs / 1000} s (${c.messageBytes} B), HTTP every ${c.httpIntervalMs / 1000} s, connections ${c.connections}, concurrent spawn limit ${c.concurrentSpawnLimit}, profile ${c.profile}${c.serverStartTime && c.serverStartTime.max > 0 ? `, server start time ${c.serverStartTime.min / 1000}-${c.serverStartTime.max / 1000} s` : ''}.`,
    `Model: ${c.model ?? 'class'} — ${MODELS[c.model ?? 'class'].description}${c.overridden?.length ? `; overridden by flags: ${c.overridden.map(k => `--${k}`).join(', ')}` : ''}.${c.waveUsers ? ` Arrivals: waves of up to ${c.waveUsers} users.` : ' Arrivals: uniform.'}${c.keepGoing ? ' --keep-going: every step ran unless more than 5% of a step\'s users failed.' : ''}`,
    findScenario(r.scenario)?.judgeText ? `Verdict (this scenario's own, in place of the steady-state SLOs): ${findScenario(r.scenario)!.judgeText}.`
      : `SLOs: no failed user, no 5xx, no dropped websocket, hub p99 < ${c.slo.hubApiP99Ms} ms, proxy added p99 < ${c.slo.proxyAddedP99Ms} ms, websocket echo p99 < ${c.slo.wsEchoP99Ms} ms.`,
    `Result: ${resultLine(r)}${r.flamegraph ? ` Flamegraph of the hub (the steps): [${r.flamegraph}](${r.flamegraph}).` : ''}${r.logs?.length ? ` Logs of its processes: ${r.logs.map(l => `[${l}](${l})`).join(', ')}.` : ''}`, '',
    ...summaryMarkdown(r),
    '## Steps', '',
    '| step | users | s | healthy | spawned | failed | login p99 ms | logout p99 ms | spawn p99 ms | first page p99 ms | echo p99 ms | proxy added p99 ms | hub accept queue max / p99 | proxy accept queue max / p99 | hub CPU % | generator CPU % |',
    '| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.steps.map(s => `| ${s.index} | ${s.users} | ${s.durationS} | ${s.slo.healthy ? 'yes' : `NO (${(s.slo.broken ?? []).join(', ')})`}${s.generatorLimited ? ' (generator saturated)' : ''}${s.servingStopped ? ' (serving stopped)' : ''} | ${s.tally.spawned} | ${s.tally.failed} | ${fmt(s.latencies['phase:login']?.p99)} | ${fmt(s.latencies['http:GET /hub/logout']?.p99)} | ${fmt(s.latencies['phase:spawn']?.p99)} | ${fmt(s.latencies['phase:first_page']?.p99)} | ${fmt(s.latencies['phase:ws_echo']?.p99)} | ${fmt(s.proxyAdded?.p99)} | ${queueCell(s.acceptQueue?.hub)} | ${queueCell(s.acceptQueue?.proxy)} | ${fmt(s.resources.hub?.cpuMean)}${s.resources['hub-workers'] ? ` (+ workers ${s.resources['hub-workers'].cpuMean})` : ''} | ${fmt(s.generator?.cpuMean ?? s.resources.generator?.cpuMean)}${(s.generator?.count ?? 1) > 1 ? ` (busiest of ${s.generator!.count})` : ''} |`),
    '',
    ...(r.steps.some(s => s.acceptQueue) ? ['Accept queue: connections the kernel completed that the process had not accepted yet, on the hub port (with several workers, the cluster primary\'s socket) and the proxy\'s public port, read from /proc/net/tcp every 100 ms over the step (`ss -ltn` Recv-Q), or less often where thousands of user servers listen too and a reading costs more (the sampler keeps to 5% of a core); max and nearest-rank p99 of the samples.', ''] : []),
  ]
  return [...head, ...profileMarkdown(r), ...r.steps.map(stepMarkdown)].join('\n')
}

/** The run's verdict in one sentence. */
export function resultLine(r: RunResult): string {
  const sm = r.summary
  const unhealthy = sm?.unhealthySteps ?? (r.breakingStep === null ? [] : [r.breakingStep])
  const cut = r.interrupted ? ` The run was cut short (${r.interrupted}) after ${r.steps.length} step(s).` : ''
  if (unhealthy.length === 0) return `every step held its SLOs.${cut}`
  const point = r.breakingStep === null
    ? `no breaking point of the system: every unhealthy step (${unhealthy.join(', ')}) had a saturated generator`
    : `step ${r.breakingStep} (${r.steps.find(s => s.index === r.breakingStep)?.users} users) broke the SLOs (the breaking point)`
  return `${point}${sm?.servingStoppedAt ? `; serving stopped at step ${sm.servingStoppedAt}` : ''}.${cut}`
}

/** Where each SLO first broke, where serving stopped, which steps the generator limited, and what the run left behind. */
function summaryMarkdown(r: RunResult): string[] {
  const sm = r.summary
  const out: string[] = []
  if (sm) {
    const users = (i: number) => r.steps.find(s => s.index === i)?.users
    out.push('## Summary', '')
    const broken = Object.entries(sm.firstBroken)
    out.push(broken.length === 0 ? '- No SLO broke in a step whose generator kept up.' : `- First step each SLO broke: ${broken.map(([k, i]) => `${k} at step ${i} (${users(i)} users)`).join('; ')}.`)
    const sat = Object.entries(sm.firstBrokenSaturated)
    if (sat.length > 0) out.push(`- Broken only in steps with a saturated generator (not counted): ${sat.map(([k, i]) => `${k} at step ${i}`).join('; ')}.`)
    out.push(`- Serving stopped (more than 5% of users failed): ${sm.servingStoppedAt === null ? 'never' : `at step ${sm.servingStoppedAt} (${users(sm.servingStoppedAt)} users)`}.`)
    out.push(`- Generator saturated: ${sm.saturatedSteps.length === 0 ? 'in no step' : `steps ${sm.saturatedSteps.join(', ')}`}.`)
  }
  if (r.fdLimits && r.fdLimits.length > 0) {
    out.push(`- Open-file limits at start: ${r.fdLimits.map(l => `${l.name} ${l.soft} (hard ${l.hard}; about ${l.usersAllowed} users at ${l.fdsPerUser} per user${l.enough ? '' : `, **fewer than the ${l.usersNeeded} this run may hold**`})`).join('; ')}.`)
  }
  if (r.processes) {
    out.push(`- Processes the run started: ${r.processes.length}; ${r.leftovers && r.leftovers.length > 0 ? `**outlived their orderly stop and were stopped by pid at the end: ${r.leftovers.map(p => `${p.name} ${p.pid}`).join(', ')}**` : 'every one stopped in order'}.`)
  }
  if (r.interrupted) out.push(`- **Interrupted**: ${r.interrupted}.`)
  return out.length > 0 ? [...out, ''] : []
}

const PROFILE_ROWS = 10

/** The hub's CPU profile (--profile hub): where the flamegraph and the raw data are, and its hottest frames. */
function profileMarkdown(r: RunResult): string[] {
  const p = r.profile
  if (!p) return []
  if ('missing' in p) return ['## Hub CPU profile', '', `None: ${p.missing}.`, '']
  const s = p.summary
  const rows = (xs: typeof s.topSelf) => xs.slice(0, PROFILE_ROWS).map(x => `| ${(100 * x.share).toFixed(1)}% | ${Math.round(x.ms)} | \`${x.frame.replaceAll('|', '\\|')}\` |`)
  return ['## Hub CPU profile', '',
    `[${p.flamegraph}](${p.flamegraph}) (node --cpu-prof, from the first step's start to the last step's end): ${s.samples} samples over ${s.windowS} s, one every ${(s.intervalUs / 1000).toFixed(1)} ms, ${s.samples - s.idleSamples} of them busy (${s.busyS} s of wall time, waits for a core included). ` +
    `Raw profile, start-up and shutdown included: [${p.raw}](${p.raw}) (gunzip it, then open it in Chrome DevTools' Performance panel or speedscope).`, '',
    '| share of busy time | self ms | frame (most self time) |', '| ---: | ---: | --- |', ...rows(s.topSelf), '',
    '| share of busy time | total ms | fleethub frame (most time, callees included) |', '| ---: | ---: | --- |', ...rows(s.topOwn), '']
}

export function charts(r: RunResult): string[] {
  const lat: ChartSeries[] = [], ops: ChartSeries[] = []
  const p50: Array<[number, number]> = [], p99: Array<[number, number]> = [], tput: Array<[number, number]> = [], errs: Array<[number, number]> = []
  for (const s of r.steps) {
    for (const p of s.series) {
      p50.push([s.fromS + p.t, p.p50]); p99.push([s.fromS + p.t, p.p99]); tput.push([s.fromS + p.t, p.ops]); errs.push([s.fromS + p.t, p.errors])
    }
  }
  lat.push({ name: 'p50 (all)', points: p50 }, { name: 'p99 (all)', points: p99 })
  ops.push({ name: 'completed/s', points: tput }, { name: 'errors/s', points: errs })
  const names = [...new Set(r.resources.flatMap(p => Object.keys(p.procs)))]
  const per = (f: (x: { cpu: number; rssMb: number; fds: number }) => number) => names.map(n => ({
    name: n, points: r.resources.filter(p => p.procs[n]).map(p => [p.t, f(p.procs[n]!)] as [number, number]),
  }))
  const out = [
    lineChart('Latency of every timed operation (1 s buckets)', 'ms', lat),
    lineChart('Throughput: operations completed per second', 'per second', ops),
    lineChart('CPU by process (100 = one core)', '% CPU', per(x => x.cpu)),
    lineChart('Resident memory by process', 'MB', per(x => x.rssMb)),
    lineChart('Open file descriptors by process', 'fds', per(x => x.fds)),
    lineChart('Accept queue of the listening sockets (largest each second)', 'connections', (['hub', 'proxy'] as const).map(k => ({
      name: `${k} port`, points: r.steps.flatMap(s => (s.acceptQueue?.[k]?.perSecondMax ?? []).map(([t, q]) => [s.fromS + t, q] as [number, number])),
    }))),
    lineChart('Generator event-loop lag p99 and Postgres connections', 'ms / connections', [
      { name: 'loop lag p99 ms', points: r.resources.map(p => [p.t, p.loopLagP99] as [number, number]) },
      { name: 'pg connections', points: r.resources.filter(p => p.pgConnections !== null).map(p => [p.t, p.pgConnections!] as [number, number]) },
    ]),
  ]
  for (const s of r.steps) {
    const keys = Object.keys(s.latencies).filter(k => k.startsWith('phase:'))
    if (keys.length > 0) {
      out.push(lineChart(`Step ${s.index}: p50 / p90 / p99 by phase`, 'ms', [
        { name: 'p50', points: keys.map((k, i) => [i + 1, s.latencies[k]!.p50] as [number, number]) },
        { name: 'p90', points: keys.map((k, i) => [i + 1, s.latencies[k]!.p90] as [number, number]) },
        { name: 'p99', points: keys.map((k, i) => [i + 1, s.latencies[k]!.p99] as [number, number]) },
      ], `phase: ${keys.map((k, i) => `${i + 1}=${k.slice(6)}`).join(' ')}`))
    }
  }
  return out
}

export function mdTablesToHtml(md: string): string {
  // The markdown is ours and simple: headings, paragraphs, lists and pipe tables.
  const inline = (s: string) => escapeHtml(s).replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>').replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\[([^\]]+)\]\(([^)]+)\)/g, '<a href="$2">$1</a>')
  const out: string[] = []
  const lines = md.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (l.startsWith('|')) {
      const rows: string[][] = []
      for (; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(lines[i]!.slice(1, -1).split('|').map(c => c.trim()))
      i--
      out.push('<table>', `<tr>${rows[0]!.map(c => `<th>${inline(c)}</th>`).join('')}</tr>`, ...rows.slice(2).map(r => `<tr>${r.map(c => `<td>${inline(c)}</td>`).join('')}</tr>`), '</table>')
    } else if (l.startsWith('### ')) out.push(`<h3>${inline(l.slice(4))}</h3>`)
    else if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`)
    else if (l.startsWith('# ')) out.push(`<h1>${inline(l.slice(2))}</h1>`)
    else if (l.startsWith('- ')) out.push(`<p>• ${inline(l.slice(2))}</p>`)
    else if (l.trim()) out.push(`<p>${inline(l)}</p>`)
  }
  return out.join('\n')
}

export function renderHtml(r: RunResult, md: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fleethub load test: ${r.scenario} ${r.label}</title>
<style>body{font:14px system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th:first-child,td:first-child{text-align:left}code{background:#f4f4f4}svg{display:block;margin:1em 0}</style></head><body>
${mdTablesToHtml(md.split('\n## Steps')[0]!)}
<h2>Over time</h2>
${charts(r).join('\n')}
${mdTablesToHtml('## Steps' + (md.split('\n## Steps')[1] ?? ''))}
</body></html>
`
}

export async function writeReport(r: RunResult, dir: string, indexFile: string): Promise<void> {
  const md = renderMarkdown(r)
  await fs.writeFile(path.join(dir, 'report.json'), JSON.stringify(r, null, 1) + '\n')
  await fs.writeFile(path.join(dir, 'report.md'), md + '\n')
  await fs.writeFile(path.join(dir, 'report.html'), renderHtml(r, md))
  await appendIndex(r, dir, indexFile)
}

async function appendIndex(r: RunResult, dir: string, indexFile: string): Promise<void> {
  const sm = r.summary
  const result = (sm?.unhealthySteps.length ?? (r.breakingStep === null ? 0 : 1)) === 0 ? 'all steps healthy'
    : r.breakingStep === null ? `unhealthy only with the generator saturated (steps ${sm?.unhealthySteps.join(', ')})` : `step ${r.breakingStep} unhealthy`
  await appendIndexLine(indexFile, dir, r.scenario, r.config.steps.join(','), `${result}${sm?.servingStoppedAt ? `, serving stopped at step ${sm.servingStoppedAt}` : ''}${r.interrupted ? ` (interrupted: ${r.interrupted})` : ''}`, r.command)
}

/** One line in bench-results/README.md's table of runs. */
export async function appendIndexLine(indexFile: string, dir: string, scenario: string, steps: string, result: string, command: string): Promise<void> {
  let text = await fs.readFile(indexFile, 'utf8').catch(() => '')
  if (!text.includes('## Load-test runs')) {
    text += `${text ? '\n' : '# bench-results\n'}\n## Load-test runs\n\n| folder | scenario | users per step | result | command |\n| --- | --- | --- | --- | --- |\n`
  }
  const rel = path.relative(path.dirname(indexFile), dir)
  text = text.replace(/\n?$/, '\n') + `| [${rel}](${rel}/report.md) | ${scenario} | ${steps} | ${result} | \`${command}\` |\n`
  await fs.writeFile(indexFile, text)
}
