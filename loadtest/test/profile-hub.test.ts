/**
 * `--profile hub` end to end: a short api load against a real fleethub (embedded Postgres, the hub
 * and proxy as the `fleethub start` child) with the hub under node --cpu-prof. The committed
 * flamegraphs of 2026-11-29 held 7 to 12 samples and not one JavaScript frame (0x's tick log, with
 * --cpu-prof beside it, got almost no ticks); this asserts on what the kept flamegraph holds: about a
 * sample a millisecond over the load, the hub's own frames (hub/src) among them, drawn, and no
 * machine paths. Needs `npm run build` (the stack runs from dist/).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { parseLoadtestConfig } from '../src/config.js'
import type { CpuProfile, ProfileSummary } from '../src/flamegraph.js'
import type { HubProfile } from '../src/hub-profile.js'
import { runLoadtest } from '../src/run.js'
import { REPO } from '../src/targets/processes.js'

const log = createLogger('silent')
const sink = { write: () => true } as unknown as NodeJS.WritableStream
const DURATION_S = 8
// node --cpu-prof samples every 1 ms, idle or not; on this shared 2-core machine the sampler thread
// itself waits for CPU (1.1-1.5 ms seen), so ask for a quarter of that: the broken profiles had 12
const MIN_SAMPLES_PER_S = 250

t.test('a profiled api load keeps a flamegraph of thousands of samples with the hub\'s own frames', async t => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-lt-profile-'))
  t.teardown(() => fs.rm(out, { recursive: true, force: true }))
  const config = parseLoadtestConfig(['api', '--users', '20', '--duration', `${DURATION_S}s`, '--connections', '10', '--profile', 'hub',
    '--out', out, '--label', 'ci-profile', '--live', 'off'], {})
  const result = await runLoadtest(config, { log, out: sink, command: 'test' })
  const dir = result.reportDir!
  t.ok(result.profile && !('missing' in result.profile), result.profile && 'missing' in result.profile ? result.profile.missing : 'the hub wrote its profile')
  const profile = result.profile as HubProfile
  t.same((await fs.readdir(dir)).sort(), ['flamegraph.html', 'hub.cpuprofile.gz', 'report.html', 'report.json', 'report.md'], 'the flamegraph and the raw profile, no leftovers')

  const html = await fs.readFile(path.join(dir, 'flamegraph.html'), 'utf8')
  const s = JSON.parse(/<script type="application\/json" id="profile-summary">(.*?)<\/script>/s.exec(html)![1]!) as ProfileSummary
  t.same(s, profile.summary, 'the page holds the figures the report has')
  t.ok(s.windowS >= DURATION_S, `the window covers the load (${s.windowS} s)`)
  t.ok(s.samples >= s.windowS * MIN_SAMPLES_PER_S, `${s.samples} samples over ${s.windowS} s`)
  t.ok(s.samples - s.idleSamples >= 500, `${s.samples - s.idleSamples} samples busy`)
  const hubFrames = s.topOwn.filter(f => /^\S+ hub\/src\/\S+\.ts:\d+$/.test(f.frame))
  t.ok(hubFrames.length >= 5, `hub/src frames by total time: ${hubFrames.slice(0, 5).map(f => f.frame).join(', ')}`)
  t.ok(hubFrames[0]!.share >= 0.01, `the hottest hub frame holds ${hubFrames[0]!.share} of the busy time`)
  // drawn (no filter to switch on): a frame of the chart whose hover text is a hub/src location
  t.match(html, /<g data-x="[\d.]+" data-w="[\d.]+" data-d="\d+" data-n="[^"]+"><title>[^<]+ hub\/src\/[^<]+\.ts:\d+ — /)
  t.notOk(html.includes(`${REPO}/`), 'no path of this machine\'s checkout')
  t.notOk(html.includes(`${os.tmpdir()}/`), 'no temporary path')
  t.match(html, /<title>fleethub hub, api ci-profile \(steps 20\): node --cpu-prof dist\/cli\/fleethub\.js start --spawner local<\/title>/)

  const raw = JSON.parse(zlib.gunzipSync(await fs.readFile(path.join(dir, 'hub.cpuprofile.gz'))).toString('utf8')) as CpuProfile
  t.ok(raw.samples.length >= s.samples, 'the raw profile holds the whole run, start-up and shutdown too')
  const urls = raw.nodes.map(n => n.callFrame.url)
  t.ok(urls.some(u => /^dist\/hub\/src\/.+\.js$/.test(u)), 'its hub frames by repository-relative URL')
  t.notOk(urls.some(u => u.includes(REPO) || u.includes(os.tmpdir())), 'no machine path in the raw profile either')
  const md = await fs.readFile(path.join(dir, 'report.md'), 'utf8')
  t.match(md, /## Hub CPU profile\n\n\[flamegraph\.html\]\(flamegraph\.html\) .*: \d+ samples over/)
  t.match(md, /\[hub\.cpuprofile\.gz\]\(hub\.cpuprofile\.gz\)/)
})
