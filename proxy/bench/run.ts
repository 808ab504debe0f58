/**
 * `npm run bench:proxy`: our proxy vs configurable-http-proxy 5.3 vs direct, in one run, alternating.
 * Writes bench-results/proxy-<date>/report.{json,md}. Flags: --quick (short runs, small counts),
 * --duration S (seconds per autocannon run, default 3), --rounds N (default 3), --ws N,M (default 1000,9000), --out NAME (folder under bench-results/).
 * Loopback only; all servers are child processes measured from outside (/proc/<pid>).
 */
import autocannon from 'autocannon'
import { execSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'
import { type Child, openFileLimit, REPO, rssBytes, socketFds, startChp, startOurs, startUpstream } from './processes.js'

const TOKEN = 'bench-token'
const { values } = parseArgs({ options: {
  quick: { type: 'boolean', default: false }, duration: { type: 'string' }, rounds: { type: 'string' }, ws: { type: 'string' },
  out: { type: 'string' },
} })
const DURATION = Number(values.duration ?? (values.quick ? 1 : 3))
const ROUNDS = Number(values.rounds ?? (values.quick ? 1 : 3))
const WS_STEPS = (values.ws ?? (values.quick ? '200,1000' : '1000,9000')).split(',').map(Number)
const CONNECTIONS = 50
const ROUTE_COUNTS = [1, 1000, 10_000]

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)] }
const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

const agent = new http.Agent({ keepAlive: true, maxSockets: 10 })

/** One API call with the keep-alive agent (like the hub: concurrency 10). */
function api(base: string, method: string, path: string, body?: string): Promise<{ status: number, size: number }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base)
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, agent,
      headers: { authorization: `token ${TOKEN}`, ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }) } }, res => {
      let size = 0
      res.on('data', (c: Buffer) => { size += c.length })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, size }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => { while (next < items.length) await fn(items[next++]) }))
}

async function addRoutes(proxy: Child, paths: string[], target: string): Promise<number> {
  const started = performance.now()
  await inParallel(paths, 10, async path => {
    const r = await api(proxy.apiUrl, 'POST', `/api/routes${path}`, JSON.stringify({ user: path.split('/')[2], server_name: '', target, jupyterhub: true }))
    if (r.status !== 201) throw new Error(`${proxy.name}: POST ${path} -> ${r.status}`)
  })
  return performance.now() - started
}

async function deleteRoutes(proxy: Child, paths: string[]): Promise<number> {
  const started = performance.now()
  await inParallel(paths, 10, async path => { await api(proxy.apiUrl, 'DELETE', `/api/routes${path}`) })
  return performance.now() - started
}

interface LoadResult { reqPerSec: number, p50: number, p99: number, errors: number, non2xx: number }

async function load(base: string, paths: string[]): Promise<LoadResult> {
  const r = await autocannon({ url: base, connections: CONNECTIONS, duration: DURATION, requests: paths.map(path => ({ method: 'GET', path })) })
  return { reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx }
}

function userPaths(n: number): string[] {
  return Array.from({ length: n }, () => `/user/${randomBytes(5).toString('hex')}`)
}

async function httpPhase(upstream: Child, proxies: Child[]): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {}
  const paths = userPaths(10_000)
  const hot = (count: number): string[] => paths.slice(0, Math.min(64, count)).map(p => `${p}/api/status`)
  const targets: Array<{ name: string, url: string }> = [{ name: 'direct', url: upstream.url }, ...proxies.map(p => ({ name: p.name, url: p.url }))]
  for (const p of proxies) await addRoutes(p, paths.slice(0, 1), upstream.url)
  const admin: Record<string, Record<string, number>> = {}
  for (const count of ROUTE_COUNTS) {
    if (count === 10_000) {
      for (const p of proxies) {
        const addMs = await addRoutes(p, paths.slice(1000), upstream.url)
        const gets: number[] = []
        let size = 0
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now()
          size = (await api(p.apiUrl, 'GET', '/api/routes')).size
          gets.push(performance.now() - t0)
        }
        admin[p.name] = { add9000RoutesMs: round(addMs, 0), getRoutesMedianMs: round(median(gets), 1), getRoutesBytes: size }
      }
    } else if (count === 1000) {
      for (const p of proxies) await addRoutes(p, paths.slice(1, 1000), upstream.url)
    }
    log(`HTTP load at ${count} routes`)
    if (count === ROUTE_COUNTS[0]) {
      // Warm-up (discarded): JIT, connection pools, lazily created state, for every target.
      for (const target of targets) await autocannon({ url: target.url, connections: CONNECTIONS, duration: 1, requests: hot(count).map(path => ({ method: 'GET', path })) })
    }
    const runs: Record<string, LoadResult[]> = {}
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      const order = round_ % 2 === 0 ? targets : [...targets].reverse()
      for (const target of order) {
        const r = await load(target.url, hot(count))
        ;(runs[target.name] ??= []).push(r)
        log(`  ${target.name}: ${Math.round(r.reqPerSec)} req/s p50 ${r.p50} ms p99 ${r.p99} ms errors ${r.errors} non2xx ${r.non2xx}`)
      }
    }
    results[String(count)] = Object.fromEntries(Object.entries(runs).map(([name, rs]) => [name, {
      reqPerSec: round(median(rs.map(r => r.reqPerSec)), 0), p50Ms: median(rs.map(r => r.p50)), p99Ms: median(rs.map(r => r.p99)),
      errors: rs.reduce((a, r) => a + r.errors + r.non2xx, 0), runs: rs.map(r => round(r.reqPerSec, 0)),
    }]))
  }
  // Fresh proxies for the add timing of the full 10,000 (the table above grew from 1,000).
  return { byRoutes: results, api: admin, paths: paths.slice(0, 1) }
}

async function timeAdd10k(upstream: Child, start: () => Promise<Child>): Promise<number> {
  const proxy = await start()
  try { return round(await addRoutes(proxy, userPaths(10_000), upstream.url), 0) } finally { await proxy.stop() }
}

async function openSockets(base: string, path: string, n: number, into: WebSocket[]): Promise<void> {
  const wsBase = base.replace('http', 'ws')
  let i = into.length
  await inParallel(Array.from({ length: n }, () => 0), 100, () => new Promise<void>((resolve, reject) => {
    // Spread client source addresses over 127.0.0.1-8 so ephemeral ports never run short.
    const ws = new WebSocket(`${wsBase}${path}`, { perMessageDeflate: false, localAddress: `127.0.0.${1 + (i++ % 8)}` })
    ws.once('open', () => { into.push(ws); resolve() })
    ws.once('error', reject)
  }))
}

async function echoLatency(sockets: WebSocket[], samples: number): Promise<{ p50Ms: number, p99Ms: number }> {
  const times: number[] = []
  for (let i = 0; i < samples; i++) {
    const ws = sockets[Math.floor(Math.random() * sockets.length)]
    const t0 = performance.now()
    await new Promise<void>(resolve => { ws.once('message', () => resolve()); ws.send('ping') })
    times.push(performance.now() - t0)
  }
  return { p50Ms: round(median(times), 3), p99Ms: round(pct(times, 0.99), 3) }
}

async function settle(pid: number, baseline: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && socketFds(pid) > baseline) await new Promise(resolve => setTimeout(resolve, 200))
  return socketFds(pid)
}

async function wsPhase(upstream: Child, proxy: Child, path: string): Promise<Record<string, unknown>> {
  const pid = proxy.proc.pid!
  await new Promise(resolve => setTimeout(resolve, 1500))
  const fdBase = socketFds(pid)
  const rssBase = rssBytes(pid)
  const sockets: WebSocket[] = []
  const steps: Record<string, unknown> = {}
  let previous = { total: 0, rss: rssBase }
  for (const total of WS_STEPS) {
    const t0 = performance.now()
    await openSockets(proxy.url, path, total - sockets.length, sockets)
    const openMs = performance.now() - t0
    await new Promise(resolve => setTimeout(resolve, 1000))
    const rss = rssBytes(pid)
    const echo = await echoLatency(sockets, 500)
    // Marginal cost from the previous step: less sensitive to what the GC did before the baseline.
    const marginalKb = round((rss - previous.rss) / 1024 / (total - previous.total), 1)
    previous = { total, rss }
    steps[String(total)] = { openMs: round(openMs, 0), rssDeltaMB: round((rss - rssBase) / 2 ** 20, 1), kbPerWebsocket: round((rss - rssBase) / 1024 / total, 1),
      marginalKbPerWebsocket: marginalKb, echo, proxySocketFds: socketFds(pid) }
    log(`  ${proxy.name}: ${total} websockets open, ${round((rss - rssBase) / 1024 / total, 1)} KB each, echo p50 ${echo.p50Ms} ms p99 ${echo.p99Ms} ms`)
  }
  for (const ws of sockets) ws.terminate()
  const fdAfter = await settle(pid, fdBase, 15_000)
  return { steps, socketFdsBefore: fdBase, socketFdsAfterClientsVanished: fdAfter }
}

function machine(): Record<string, unknown> {
  const sha = (() => { try { return execSync('git rev-parse --short HEAD', { cwd: REPO }).toString().trim() } catch { return 'unknown' } })()
  const version = (pkg: string): string => (JSON.parse(readFileSync(join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  return {
    cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGB: round(os.totalmem() / 2 ** 30, 1), loadAvgAtStart: os.loadavg().map(x => round(x, 2)),
    node: process.version, chp: version('configurable-http-proxy'), httpProxy3: version('http-proxy-3'), autocannon: version('autocannon'),
    commit: sha, openFileLimit: openFileLimit(),
  }
}

async function main(): Promise<void> {
  const started = Date.now()
  const info = machine()
  const limit = info.openFileLimit as number
  const wsMax = Math.max(...WS_STEPS)
  if (limit < 2 * wsMax + 500) throw new Error(`open file limit ${limit} is too low for ${wsMax} websockets (need ${2 * wsMax + 500}); raise ulimit -n`)
  const upstream = await startUpstream()
  const chp = await startChp(TOKEN)
  const ours = await startOurs(TOKEN)
  const report: Record<string, unknown> = { date: new Date().toISOString(), command: `npm run bench:proxy${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`, machine: info,
    settings: { connections: CONNECTIONS, durationS: DURATION, rounds: ROUNDS, websocketSteps: WS_STEPS } }
  try {
    log('HTTP phase')
    const httpResults = await httpPhase(upstream, [chp, ours])
    report.http = httpResults.byRoutes
    report.api = httpResults.api
    log('timing 10,000 route additions on fresh proxies')
    report.add10000RoutesMs = { chp: await timeAdd10k(upstream, () => startChp(TOKEN)), fleethub: await timeAdd10k(upstream, () => startOurs(TOKEN)) }
    log('websocket phase')
    const wsPath = `${(httpResults.paths as string[])[0]}/api/kernels/k/channels`
    report.websockets = { chp: await wsPhase(upstream, chp, wsPath), fleethub: await wsPhase(upstream, ours, wsPath) }
  } finally {
    agent.destroy()
    await Promise.all([chp.stop(), ours.stop(), upstream.stop()])
  }
  report.wallSeconds = Math.round((Date.now() - started) / 1000)
  const dir = join(REPO, 'bench-results', values.out ?? `proxy-${new Date().toISOString().slice(0, 10)}${values.quick ? '-quick' : ''}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(join(dir, 'report.md'), renderMarkdown(report))
  log(`wrote ${dir}/report.{json,md} in ${report.wallSeconds} s`)
}

type Row = { reqPerSec: number, p50Ms: number, p99Ms: number, errors: number, runs: number[] }

function renderMarkdown(r: Record<string, unknown>): string {
  const m = r.machine as Record<string, unknown>
  const http_ = r.http as Record<string, Record<string, Row>>
  const lines = [
    `# Proxy benchmark: fleethub proxy vs configurable-http-proxy ${String(m.chp)} vs direct`, '',
    `- date: ${String(r.date)}; commit ${String(m.commit)}; wall time ${String(r.wallSeconds)} s`,
    `- command: \`${String(r.command)}\` (builds first, then \`node --import tsx proxy/bench/run.ts\`)`,
    `- machine: ${String(m.cpus)} × ${String(m.cpuModel)}, ${String(m.memGB)} GB, load average at start ${JSON.stringify(m.loadAvgAtStart)} (shared, noisy)`,
    `- node ${String(m.node)}, http-proxy-3 ${String(m.httpProxy3)}, autocannon ${String(m.autocannon)}, open-file limit ${String(m.openFileLimit)}`,
    `- load: autocannon, ${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} alternating rounds per target (medians shown, all runs listed); the upstream, both proxies and the driver are separate processes on the same 2 cores; routes are random \`/user/<hex>\` paths, requests cycle over 64 routed paths`, '',
    '## HTTP throughput and latency', '',
    '| routes | target | req/s (median) | p50 ms | p99 ms | errors+non-2xx | runs (req/s) |', '|---|---|---|---|---|---|---|',
  ]
  for (const [count, byTarget] of Object.entries(http_)) {
    for (const [name, row] of Object.entries(byTarget)) lines.push(`| ${count} | ${name} | ${row.reqPerSec} | ${row.p50Ms} | ${row.p99Ms} | ${row.errors} | ${row.runs.join(', ')} |`)
  }
  lines.push('', '| routes | fleethub / CHP req/s | fleethub / direct req/s | CHP / direct req/s | p99 fleethub vs CHP (ms) |', '|---|---|---|---|---|')
  for (const [count, t] of Object.entries(http_)) {
    lines.push(`| ${count} | ${round(t.fleethub.reqPerSec / t.chp.reqPerSec)}× | ${round(t.fleethub.reqPerSec / t.direct.reqPerSec)}× | ${round(t.chp.reqPerSec / t.direct.reqPerSec)}× | ${t.fleethub.p99Ms} vs ${t.chp.p99Ms} |`)
  }
  const apiR = r.api as Record<string, Record<string, number>>
  const add = r.add10000RoutesMs as Record<string, number>
  lines.push('', '## Routing API', '', '| | CHP | fleethub | ratio |', '|---|---|---|---|',
    `| add 10,000 routes, fresh proxy (POST, 10 concurrent, keep-alive), ms | ${add.chp} | ${add.fleethub} | ${round(add.chp / add.fleethub)}× faster |`,
    `| add 9,000 routes on top of 1,000, ms | ${apiR.chp.add9000RoutesMs} | ${apiR.fleethub.add9000RoutesMs} | ${round(apiR.chp.add9000RoutesMs / apiR.fleethub.add9000RoutesMs)}× faster |`,
    `| GET /api/routes at 10,000 routes, median of 5, ms | ${apiR.chp.getRoutesMedianMs} | ${apiR.fleethub.getRoutesMedianMs} | ${round(apiR.chp.getRoutesMedianMs / apiR.fleethub.getRoutesMedianMs)}× faster |`,
    `| GET /api/routes body size, bytes | ${apiR.chp.getRoutesBytes} | ${apiR.fleethub.getRoutesBytes} | |`)
  const ws = r.websockets as Record<string, { steps: Record<string, { openMs: number, rssDeltaMB: number, kbPerWebsocket: number, marginalKbPerWebsocket: number, echo: { p50Ms: number, p99Ms: number }, proxySocketFds: number }>, socketFdsBefore: number, socketFdsAfterClientsVanished: number }>
  lines.push('', '## Websockets', '', 'Echo latency: 500 sequential round trips on random open sockets. RSS is read from /proc/<pid>/status; "marginal" is the RSS growth since the previous step divided by the sockets added.', '',
    '| open websockets | proxy | time to open, ms | RSS delta, MB | KB per websocket | marginal KB per websocket | echo p50 ms | echo p99 ms | proxy socket fds |', '|---|---|---|---|---|---|---|---|---|')
  for (const total of Object.keys(ws.chp.steps)) {
    for (const name of ['chp', 'fleethub']) {
      const s = ws[name].steps[total]
      lines.push(`| ${total} | ${name} | ${s.openMs} | ${s.rssDeltaMB} | ${s.kbPerWebsocket} | ${s.marginalKbPerWebsocket} | ${s.echo.p50Ms} | ${s.echo.p99Ms} | ${s.proxySocketFds} |`)
    }
  }
  lines.push('', '| proxy | socket fds before | socket fds 15 s after all clients vanished (terminated, no close frame) |', '|---|---|---|')
  for (const name of ['chp', 'fleethub']) lines.push(`| ${name} | ${ws[name].socketFdsBefore} | ${ws[name].socketFdsAfterClientsVanished} |`)
  lines.push('')
  return lines.join('\n')
}

main().catch((err: unknown) => { process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`); process.exit(1) })
