/**
 * --generators 2 end to end against a real fleethub (embedded Postgres, `fleethub start`, built-in
 * user servers): both child generators ran users, every user finished, the children's latencies
 * and echoes merged into the one report (the counts equal the users' own tallies), and no child is
 * alive afterwards. Needs `npm run build` (the stack runs from dist/).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { parseLoadtestConfig } from '../src/config.js'
import { runLoadtest } from '../src/run.js'
import type { RunResult } from '../src/run-result.js'

const log = createLogger('silent')
const sink = { write: () => true } as unknown as NodeJS.WritableStream

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('class-start, 10 users over 2 child generators', async t => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-lt-gen-'))
  t.teardown(() => fs.rm(out, { recursive: true, force: true }))
  const config = parseLoadtestConfig(['class-start', '--users', '10', '--arrival', '2s', '--duration', '4s', '--message-interval', '1s',
    '--leave', 'tidy=0.4,abandon=0.4,silent-ws=0.2', '--generators', '2', '--out', out, '--label', 'ci-gen', '--live', 'off'], {})
  const result = await runLoadtest(config, { log, out: sink, command: 'test' })
  const step = result.steps[0]!
  t.equal(step.tally.users, 10)
  t.equal(step.tally.failed, 0, `no user failed (${JSON.stringify(step.notes)})`)
  t.equal(step.tally.loggedIn, 10, 'every user completed: logged in')
  t.equal(step.tally.spawned, 10, 'spawned')
  t.equal(step.tally.stopped, 4, 'the tidy share stopped their servers')
  t.equal(step.counts['leave:silent-ws'], 2)

  const report = JSON.parse(await fs.readFile(path.join(result.reportDir!, 'report.json'), 'utf8')) as RunResult
  const r = report.steps[0]!
  const g = r.generator!
  t.equal(g.count, 3, 'the runner and 2 child generators')
  const children = g.processes!.filter(p => p.name.startsWith('child'))
  t.same(children.map(c => c.users), [5, 5], 'users dealt i % 2')
  t.equal(g.processes![0]!.users, 0, 'the runner ran none itself')
  for (const c of children) {
    t.ok(c.pid !== undefined && c.pid !== process.pid, `${c.name} is a process of its own (${c.pid})`)
    t.notOk(c.crashed, `${c.name} did not exit early`)
  }
  t.equal(r.latencies['phase:login']!.count, 10, 'logins timed in the children merged: one per user')
  t.equal(r.latencies['phase:first_page']!.count, 10)
  t.equal(r.latencies['phase:ws_echo']!.count, step.tally.echoes, "merged echo count = the users' own counters")
  t.ok(step.tally.echoes >= 10, `every user's websocket echoed (${step.tally.echoes})`)
  t.equal(r.counts.login_ok, 10)
  t.ok(r.proxyAdded && r.proxyAdded.samples > 3, 'the probe ran in the runner')
  t.equal(r.series.reduce((a, p) => a + p.ops, 0), Object.values(r.latencies).reduce((a, l) => a + l.count, 0), 'every merged sample is in the time series')
  const md = await fs.readFile(path.join(result.reportDir!, 'report.md'), 'utf8')
  t.match(md, /Generator processes: 3 \(the runner and 2 children\), max CPU [\d.]+% of a core/)
  t.same(children.filter(c => alive(c.pid!)).map(c => c.pid), [], 'no child generator is alive after the run')
})
