/** The --cpu-prof flamegraph: the call tree's times add up, idle and out-of-window samples are left out, frames are named by their place in the repository. */
import fs from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { callTree, flamegraphHtml, renderFlamegraph, type CpuProfile } from '../src/flamegraph.js'
import { busySamples, keepHubProfile, mainThreadProfiles, repoLocator } from '../src/hub-profile.js'

const frame = (functionName: string, url = 'file:///work/main/dist/hub/src/x.js', lineNumber = 0) => ({ functionName, url, lineNumber })

t.test('self and total times from samples and time deltas', async t => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
      { id: 2, callFrame: frame('handle'), children: [3] },
      { id: 3, callFrame: frame('query', 'file:///x/node_modules/pg/lib/client.js', 9) },
      { id: 4, callFrame: frame('(garbage collector)', '') },
    ],
    // 30 ms in handle, 10 ms in query, 60 ms in GC (time deltas in microseconds)
    samples: [2, 2, 2, 3, 4, 4],
    timeDeltas: [10_000, 10_000, 10_000, 10_000, 30_000, 30_000],
  }
  const root = callTree(profile)
  t.equal(root.totalMs, 100)
  const handle = root.children.find(c => c.name === 'handle')!
  t.equal(handle.selfMs, 30)
  t.equal(handle.totalMs, 40, 'includes its callee')
  t.equal(handle.children[0]!.where, 'node_modules/pg/lib/client.js:10')
  const html = flamegraphHtml(profile, 'test <profile>')
  t.match(html, /<title>test &lt;profile&gt;<\/title>/, 'escaped')
  t.match(html, /handle dist\/hub\/src\/x\.js:1 — 40 ms \(40\.0%\), self 30 ms/)
  t.match(html, /<td>60\.0%<\/td><td>60<\/td><td><code>\(garbage collector\)<\/code>/, 'top self time first')
})

t.test('idle is counted but not drawn; samples outside the window are left out; recursion counts once', async t => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 5] },
      { id: 2, callFrame: frame('walk'), children: [3] },
      { id: 3, callFrame: frame('walk'), children: [4] },
      { id: 4, callFrame: frame('leaf', 'file:///work/main/dist/hub/src/y.js', 4) },
      { id: 5, callFrame: frame('(idle)', '') },
    ],
    startTime: 1_000_000,
    // one sample every 10 ms from t = 1.01 s: walk>walk>leaf twice, walk once, idle five times, then leaf late
    samples: [4, 4, 2, 5, 5, 5, 5, 5, 4],
    timeDeltas: [10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 500_000],
  }
  const { html, summary } = renderFlamegraph(profile, 'window', { window: { fromUs: 1_000_000, toUs: 1_100_000 } })
  t.equal(summary.samples, 8, 'the late sample is outside the window')
  t.equal(summary.idleSamples, 5)
  t.equal(summary.busyS, 0.03, 'idle time is not busy time')
  t.equal(summary.windowS, 0.1)
  t.equal(summary.intervalUs, 10_000)
  t.same(summary.topOwn.map(f => [f.frame, f.ms, f.share]), [['walk dist/hub/src/x.js:1', 30, 1], ['leaf dist/hub/src/y.js:5', 20, 0.6667]], 'a recursive frame once per stack')
  t.notMatch(html, /data-n="\(idle\)"/, 'idle not drawn')
  t.match(html, /data-w="1200\.000" data-d="0" data-n="busy: 0\.0 s"/, 'the root spans the chart: busy time only')
  const embedded = JSON.parse(/<script type="application\/json" id="profile-summary">(.*?)<\/script>/s.exec(html)![1]!) as unknown
  t.same(embedded, summary, 'the figures are in the page')
})

t.test('frames are named by their place in the repository, through dist source maps', async t => {
  const repo = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-locate-'))
  t.teardown(() => fs.rm(repo, { recursive: true, force: true }))
  await fs.mkdir(path.join(repo, 'dist/hub/src'), { recursive: true })
  const js = path.join(repo, 'dist/hub/src/app.js')
  await fs.writeFile(js, 'export function a() {}\nexport function b() {}\n')
  // line 2 of app.js (0-based 1) comes from line 7 of hub/src/app.ts (mappings: ";AAMA" = line +6)
  await fs.writeFile(`${js}.map`, JSON.stringify({ version: 3, file: 'app.js', sources: ['../../../hub/src/app.ts'], names: [], mappings: ';AAMA' }))
  const locate = repoLocator(repo)
  t.equal(locate(pathToFileURL(js).href, 1, 0), 'hub/src/app.ts:7', 'the TypeScript line')
  t.equal(locate(pathToFileURL(js).href, 0, 0), 'dist/hub/src/app.js:1', 'no mapping for that line: the dist file')
  t.equal(locate(pathToFileURL(path.join(repo, 'node_modules/pg/lib/client.js')).href, 9, 2), 'node_modules/pg/lib/client.js:10')
  t.equal(locate('node:net', 299, 0), 'node:net:300')
  t.equal(locate('file:///somewhere/else/tool.js', 0, 0), 'tool.js:1', 'outside the repository: no machine path')
  t.equal(locate('file:///shared/install/node_modules/pg/lib/client.js', 9, 0), 'node_modules/pg/lib/client.js:10', 'a node_modules linked from outside')
})

t.test('the main thread\'s profile, not a loader worker\'s', async t => {
  // node --import <hooks> --cpu-prof: the hooks run in worker thread 1, which writes its own profile
  t.same(mainThreadProfiles(['CPU.20261201.220134.19812.1.002.cpuprofile', 'CPU.20261201.220134.19812.0.001.cpuprofile', 'notes.txt']), ['CPU.20261201.220134.19812.0.001.cpuprofile'])
  t.same(mainThreadProfiles(['CPU.20261201.220134.19812.1.002.cpuprofile']), [])
})

t.test('with --workers N every hub process writes a profile: the busiest in the window is drawn, and all are named', async t => {
  // primary, worker A (busy inside the window), worker B (busy, but before the window)
  const profileOf = (busyAt: number[]): CpuProfile => ({
    nodes: [{ id: 1, callFrame: frame('(root)', ''), children: [2, 3] }, { id: 2, callFrame: frame('(idle)', '') }, { id: 3, callFrame: frame('handle') }],
    startTime: 0, endTime: 100, samples: Array.from({ length: 10 }, (_, i) => busyAt.includes(i) ? 3 : 2), timeDeltas: Array.from({ length: 10 }, () => 10),
  })
  const window = { fromUs: 45, toUs: 100 }
  const files = {
    'CPU.20261202.010000.100.0.001.cpuprofile': profileOf([]),
    'CPU.20261202.010000.101.0.002.cpuprofile': profileOf([5, 6, 7]),
    'CPU.20261202.010000.102.0.003.cpuprofile': profileOf([0, 1, 2, 3]),
    'CPU.20261202.010000.102.1.004.cpuprofile': profileOf([0, 1, 2, 3, 4, 5, 6, 7, 8]),
  }
  t.same(mainThreadProfiles(Object.keys(files)), Object.keys(files).slice(0, 3), 'one per process, loader threads left out')
  t.equal(busySamples(files['CPU.20261202.010000.101.0.002.cpuprofile'], window), 3)
  t.equal(busySamples(files['CPU.20261202.010000.102.0.003.cpuprofile'], window), 0, 'samples before the window do not count')
  t.equal(busySamples(files['CPU.20261202.010000.102.0.003.cpuprofile']), 4, 'without a window, all do')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-profiles-'))
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-report-'))
  t.teardown(() => fs.rm(out, { recursive: true, force: true }))
  for (const [name, p] of Object.entries(files)) await fs.writeFile(path.join(dir, name), JSON.stringify(p))
  const kept = await keepHubProfile(dir, out, { repo: '/work/main', title: 'hub', window })
  t.equal(kept?.summary.busyS !== undefined, true, 'a flamegraph was drawn')
  const html = await fs.readFile(path.join(out, 'flamegraph.html'), 'utf8')
  t.match(html, /Of the 3 hub processes \(pid 100: 0 busy samples, pid 101: 3 busy samples, pid 102: 0 busy samples\), the busiest is drawn: pid 101\./)
})

t.test('a real profile of this process renders with the function that burned the CPU', async t => {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  function spinForAWhile(): number { let x = 0; const end = Date.now() + 200; while (Date.now() < end) x += Math.sqrt(x + 1); return x }
  spinForAWhile()
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  const html = flamegraphHtml(profile as unknown as CpuProfile, 'real')
  t.match(html, /<svg [^>]*role="img"/)
  t.match(html, /spinForAWhile/)
})
