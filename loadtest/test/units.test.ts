/** The harness's pure parts: percentiles, config errors, the leave mix, the cookie jar, charts, SLO verdicts. */
import t from 'tap'
import { Histogram, Recorder } from '../src/histogram.js'
import { ConfigError, parseDuration, parseLoadtestConfig } from '../src/config.js'
import { assignLeaves } from '../src/scenarios/users.js'
import { CookieJar } from '../src/cookie-jar.js'
import { lineChart, niceMax } from '../src/svg-chart.js'
import { isHubApiKey, judgeStep } from '../src/run.js'
import { routeKey } from '../src/simulated-user.js'

t.test('percentiles are nearest-rank over every sample', async t => {
  const h = new Histogram()
  for (let i = 100; i >= 1; i--) h.record(i)
  t.equal(h.percentile(50), 50)
  t.equal(h.percentile(99), 99)
  t.equal(h.percentile(100), 100)
  h.record(1000)
  t.equal(h.summary().max, 1000)
  t.equal(h.summary().count, 101)
  t.throws(() => h.record(-1), RangeError)
  t.ok(Number.isNaN(new Histogram().percentile(50)))
  const r = new Recorder()
  r.record('a', 5); r.error('a'); r.count('x'); r.count('x')
  t.same(r.counts(), { x: 2 })
  t.match(r.latencies().a, { count: 1, errors: 1, p99: 5 })
  t.equal(r.series().reduce((s, p) => s + p.ops, 0), 1)
})

t.test('config: every problem listed, durations parsed, mix normalised', async t => {
  t.equal(parseDuration('2m', 'x'), 120_000)
  t.equal(parseDuration('250ms', 'x'), 250)
  t.equal(parseDuration('3', 'x'), 3000)
  const c = parseLoadtestConfig(['class-start', '--users', '200', '--arrival', '60s', '--leave', 'tidy=1,abandon=1'], {})
  t.same(c.steps, [200])
  t.equal(c.arrivalMs, 60_000)
  t.same(c.leaveMix, { tidy: 0.5, abandon: 0.5, 'silent-ws': 0 })
  t.ok(Object.isFrozen(c))
  t.same(parseLoadtestConfig(['ramp'], {}).steps, [600, 1000, 2000, 5000, 10_000, 20_000])
  let err: unknown
  try { parseLoadtestConfig(['nope', '--users', '0', '--leave', 'sideways=1'], {}) } catch (e) { err = e }
  t.ok(err instanceof ConfigError, 'one ConfigError')
  t.equal((err as ConfigError).code, 'LOADTEST_BAD_CONFIG')
  t.match((err as Error).message, /scenario.*--users.*sideways|scenario[\s\S]*sideways/, 'listing every problem')
  t.match((err as Error).message, /--users/)
  t.throws(() => parseLoadtestConfig(['steady', '--target', 'http://127.0.0.1:1'], {}), /LOADTEST_PASSWORD/)
  t.equal(parseLoadtestConfig(['steady', '--target', 'http://127.0.0.1:1'], { LOADTEST_PASSWORD: 'p' }).password, 'p')
  t.throws(() => parseLoadtestConfig(['steady', '--bogus'], {}), { code: 'LOADTEST_BAD_CONFIG' })
  t.equal(parseLoadtestConfig(['--help'], {}).help, true)
})

t.test('the leave mix is exact and spread over the arrivals', async t => {
  const modes = assignLeaves(20, { tidy: 0.3, abandon: 0.5, 'silent-ws': 0.2 })
  t.equal(modes.filter(m => m === 'tidy').length, 6)
  t.equal(modes.filter(m => m === 'abandon').length, 10)
  t.equal(modes.filter(m => m === 'silent-ws').length, 4)
  t.ok(modes.slice(0, 10).includes('tidy') && modes.slice(10).includes('tidy'), 'early and late arrivals both leave tidily')
  t.equal(assignLeaves(7, { tidy: 1 / 3, abandon: 1 / 3, 'silent-ws': 1 / 3 }).length, 7)
})

t.test('cookie jar: paths, expiry, longest path first', async t => {
  const jar = new CookieJar()
  const h = new Headers()
  h.append('set-cookie', 'a=1; Path=/hub/; HttpOnly')
  h.append('set-cookie', 'b=2; Path=/user/alice')
  h.append('set-cookie', 'c=3')
  jar.store(h)
  t.equal(jar.header('/hub/login'), 'a=1; c=3')
  t.equal(jar.header('/user/alice/api'), 'b=2; c=3')
  t.equal(jar.header('/user/alicex'), 'c=3', 'a path prefix is a whole segment')
  const gone = new Headers()
  gone.append('set-cookie', 'a=; Path=/hub/; Max-Age=0')
  jar.store(gone)
  t.equal(jar.header('/hub/login'), 'c=3')
})

t.test('route keys, charts, SLO verdicts', async t => {
  t.equal(routeKey('/user/s1/api/kernels/0f8fad5b-d9cb-469f-a165-70867728950e/channels', 's1'), '/user/{name}/api/kernels/{id}/channels')
  t.equal(niceMax(730), 1000)
  t.equal(niceMax(0), 1)
  const svg = lineChart('t <x>', 'ms', [{ name: 'p99', points: [[0, 1], [10, 5]] }])
  t.match(svg, /^<svg[^>]*>.*<path d="M/)
  t.match(svg, /t &lt;x&gt;/)
  t.ok(isHubApiKey('http:GET /hub/login'))
  t.notOk(isHubApiKey('http:POST /hub/api/users/{name}/server'), 'the spawn request waits for the spawn by design')
  t.notOk(isHubApiKey('http:DELETE /hub/api/users/{name}/server'), 'and the stop request for the stop')
  const config = parseLoadtestConfig(['class-start'], {})
  const lat = (p99: number) => ({ count: 10, errors: 0, min: 1, mean: 1, p50: 1, p90: 1, p99, max: p99 })
  t.same(judgeStep(config, { counts: { spawn_ok: 3 }, latencies: { 'http:GET /hub/login': lat(20), 'phase:ws_echo': lat(30) }, proxyAdded: { p50: 1, p99: 2, samples: 9 }, autocannon: {} }), { healthy: true, failures: [], broken: [] })
  const bad = judgeStep(config, { counts: { 'failed:spawn_timeout': 2, 'error:5xx': 1, 'error:ws_dropped': 1 }, latencies: { 'http:GET /hub/login': lat(2000), 'phase:ws_echo': lat(300) }, proxyAdded: { p50: 1, p99: 60, samples: 9 }, autocannon: {} })
  t.equal(bad.healthy, false)
  t.equal(bad.failures.length, 6, bad.failures.join('; '))
})

t.test('compare: every figure for both targets, the ratio fleethub ÷ JupyterHub and the better one', async t => {
  const { compareStep, figure, renderCompareMarkdown, COMPARE_METHOD } = await import('../src/compare.js')
  t.match(figure('spawn p99', 'ms', 'lower', 500, 2000), { ratio: 0.25, winner: 'fleethub' })
  t.match(figure('spawns', 'servers', 'higher', 90, 100), { ratio: 0.9, winner: 'jupyterhub' })
  t.match(figure('users failed', 'users', 'lower', 0, 0), { ratio: 1, winner: 'tie' })
  t.match(figure('users failed', 'users', 'lower', 3, 0), { ratio: null, winner: 'jupyterhub' }, 'no ratio over 0')
  t.match(figure('proxy added', 'ms', 'lower', -2, 40), { ratio: null, winner: 'fleethub' }, 'no ratio of a negative difference')
  t.match(figure('x', 'ms', 'lower', 5, null), { ratio: null, winner: null })
  t.match(figure('generator CPU', '%', 'none', 50, 25), { ratio: 2, winner: null }, 'context figures have no better one')

  const lat = (p50: number, p99: number) => ({ count: 10, errors: 0, min: 1, mean: p50, p50, p90: p99, p99, max: p99 })
  const proc = (cpuMean: number, rssMaxMb: number) => ({ cpuMean, cpuMax: cpuMean * 2, rssMaxMb, fdsMax: 40, procsMax: 1 })
  const step = (o: { spawned: number; spawnP99: number; loginP99: number; hubCpu: number; pgCpu?: number; rps?: number }) => ({
    index: 1, users: 100, startedAt: '', durationS: 60, counts: { 'error:5xx': 0 }, notes: {},
    latencies: { 'phase:spawn': lat(100, o.spawnP99), 'phase:login': lat(10, o.loginP99), 'http:GET /hub/login': lat(5, o.loginP99) },
    series: [], tally: { users: 100, loggedIn: 100, spawned: o.spawned, stopped: 30, failed: 100 - o.spawned, echoes: 1000, messagesSent: 1000, retries429: 0 },
    autocannon: o.rps ? { 'GET /hub/api/users/{name}': { url: '', connections: 20, durationS: 10, requests: o.rps * 10, rps: o.rps, p50: 5, p90: 9, p99: 20, max: 30, non2xx: 0, errors: 0, timeouts: 0 } } : {},
    proxyAdded: { p50: 1, p99: 4, samples: 50 },
    resources: { hub: proc(o.hubCpu, 200), proxy: proc(10, 60), generator: proc(40, 100), ...(o.pgCpu !== undefined ? { postgres: proc(o.pgCpu, 300) } : {}) },
    loopLagP99Max: 5, pgConnectionsMax: null, generatorLimited: false, slo: { healthy: true, failures: [] }, fromS: 0, toS: 60,
  })
  const f = step({ spawned: 100, spawnP99: 1500, loginP99: 40, hubCpu: 30, pgCpu: 10, rps: 3000 })
  const j = step({ spawned: 95, spawnP99: 6000, loginP99: 120, hubCpu: 80, rps: 600 })
  const figs = compareStep(f, j)
  const by = (k: string) => figs.find(x => x.key === k)!
  t.match(by('spawns'), { fleethub: 100, jupyterhub: 95, ratio: 1.05, winner: 'fleethub', better: 'higher' })
  t.match(by('users failed'), { fleethub: 0, jupyterhub: 5, ratio: 0, winner: 'fleethub' })
  t.match(by('spawn (request to ready) p99'), { fleethub: 1500, jupyterhub: 6000, ratio: 0.25, winner: 'fleethub' })
  t.match(by('login p99'), { ratio: 0.33 })
  t.match(by('hub API p99 (worst endpoint)'), { fleethub: 40, jupyterhub: 120, ratio: 0.33 }, 'the worst hub endpoint, autocannon included')
  t.match(by('hub + database CPU mean'), { fleethub: 40, jupyterhub: 80, ratio: 0.5 }, "fleethub's Postgres counts with its hub; JupyterHub's sqlite is inside its hub")
  t.match(by('GET /hub/api/users/{name} req/s'), { fleethub: 3000, jupyterhub: 600, ratio: 5, winner: 'fleethub' })
  t.match(by('proxy added latency p99'), { ratio: 1, winner: 'tie' })
  t.notOk(figs.some(x => x.key.startsWith('stop')), 'no figure for a phase neither ran')
  const fw = { ...f, resources: { ...f.resources, hub: proc(2, 90), 'hub-workers': proc(28, 500) } }
  t.match(compareStep(fw, j).find(x => x.key === 'hub CPU mean'), { fleethub: 30, jupyterhub: 80 }, 'with --workers N the hub is its primary plus its workers')
  t.match(compareStep(fw, j).find(x => x.key === 'hub RSS max'), { fleethub: 590, jupyterhub: 200 })
  const half = compareStep(f, undefined)
  t.ok(half.every(x => x.jupyterhub === null && x.ratio === null), 'a step only one target ran has no ratios')

  const config = parseLoadtestConfig(['class-start', '--compare', 'jupyterhub', '--server-start-time', '5-15s'], {})
  t.equal(config.spawner, 'kube-sim', '--compare gives fleethub the same virtual servers (kube-sim) by default')
  t.same(config.serverStartTime, { min: 5000, max: 15000 })
  t.throws(() => parseLoadtestConfig(['class-start', '--compare', 'jupyterhub', '--target', 'jupyterhub'], {}), /leave --target at fleethub/)
  t.throws(() => parseLoadtestConfig(['class-start', '--target', 'jupyterhub', '--profile', 'hub'], {}), /py-spy/)
  t.throws(() => parseLoadtestConfig(['class-start', '--server-start-time', '5s'], {}), /--spawner kube-sim/)
  t.throws(() => parseLoadtestConfig(['api', '--jupyterhub-db', 'postgres'], {}), /add --target jupyterhub or --compare jupyterhub/)
  t.throws(() => parseLoadtestConfig(['api', '--target', 'jupyterhub', '--jupyterhub-db', 'mysql'], {}), /--jupyterhub-db: sqlite or postgres/)
  t.equal(parseLoadtestConfig(['api', '--compare', 'jupyterhub', '--jupyterhub-db', 'postgres'], {}).jupyterhubDb, 'postgres')
  t.equal(parseLoadtestConfig(['api', '--target', 'jupyterhub'], {}).jupyterhubDb, 'sqlite', 'sqlite by default (JupyterHub\'s own default)')
  t.equal(parseLoadtestConfig(['class-start', '--target', 'jupyterhub'], {}).password, undefined, 'a JupyterHub this run starts needs no password from the env')
  const run = (kind: string, s: typeof f) => ({ scenario: 'class-start', label: 'x', command: 'c', startedAt: '', finishedAt: '', config, machine: { cores: 2, memoryGiB: 4, loadavgAtStart: [1] },
    versions: { node: 'v20', fleethub: 'abc' }, target: { kind, jupyterhub: '3.0.0' }, steps: [s], breakingStep: null, resources: [] })
  const md = renderCompareMarkdown({
    kind: 'compare', scenario: 'class-start', label: 'x', command: 'c', startedAt: '', finishedAt: '', config, machine: { cores: 2, memoryGiB: 4, loadavgAtStart: [1] },
    versions: { node: 'v20', fleethub: 'abc' }, method: COMPARE_METHOD, runs: { fleethub: run('fleethub', f), jupyterhub: run('jupyterhub', j) },
    steps: [{ index: 1, users: 100, healthy: { fleethub: true, jupyterhub: true }, figures: figs }],
  })
  t.match(md, /\*\*fleethub ÷ JupyterHub\*\*/, 'the report says which way the ratio goes')
  t.match(md, /\| spawn \(request to ready\) p99 \| ms \| lower \| 1500 \| 6000 \| 0\.25 \| fleethub \|/)
  t.match(md, /## fleethub: class-start[\s\S]*## JupyterHub: class-start/, "each target's own report follows")
})

t.test('capacity per step: CPU-s per 1,000 users per minute and RSS per 1,000 users, the hub as primary plus workers', async t => {
  const { capacityFigures } = await import('../src/report.js')
  const p = (cpuMean: number, rssMaxMb: number) => ({ cpuMean, cpuMax: cpuMean, rssMaxMb, fdsMax: 0, procsMax: 1 })
  // 5,000 users, hub primary 4% + workers 30% = 34% of a core: 0.34 * 60 / 5 = 4.08 CPU-s per 1k per minute
  const c = capacityFigures({ users: 5000, resources: { hub: p(4, 100), 'hub-workers': p(30, 650), proxy: p(12.5, 340), postgres: p(15, 2000) } })
  t.same(c, [{ part: 'hub', cpuSecondsPer1kUsersPerMinute: 4.1, rssMbPer1kUsers: 150 }, { part: 'proxy', cpuSecondsPer1kUsersPerMinute: 1.5, rssMbPer1kUsers: 68 }])
  t.same(capacityFigures({ users: 1000, resources: { hub: p(10, 90) } }), [{ part: 'hub', cpuSecondsPer1kUsersPerMinute: 6, rssMbPer1kUsers: 90 }], 'one hub process, no proxy row (an external target)')
  t.equal(capacityFigures({ users: 0, resources: { hub: p(10, 90) } }), undefined, 'no users, no figure')
  t.equal(capacityFigures({ users: 100, resources: { postgres: p(1, 1) } }), undefined, 'neither hub nor proxy sampled')
})
