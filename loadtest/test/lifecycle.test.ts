/**
 * A run leaves nothing behind however it ends (issue #16: after a 10,000-user run the target's
 * proxy was still running ten minutes later): a hub SIGKILLed in the middle of a step, a run
 * that throws, and a CLI run interrupted with SIGINT. Each time every process the target
 * recorded (hub, proxy, user servers, Postgres) must be gone afterwards, checked by pid with
 * process.kill(pid, 0). Real parts: embedded Postgres, `fleethub start`, built-in user servers.
 * Needs `npm run build` (the stack runs from dist/).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { parseLoadtestConfig } from '../src/config.js'
import { runLoadtest } from '../src/run.js'
import type { RunResult } from '../src/run-result.js'
import { CLI } from '../src/targets/processes.js'
import type { Target } from '../src/targets/target.js'

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
const log = createLogger('silent')
const sink = { write: () => true } as unknown as NodeJS.WritableStream

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function outDir(t: TapTest): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-lt-life-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

/** Every recorded pid gone (a zombie awaiting its reaper counts as gone: it runs nothing). */
async function assertAllGone(t: TapTest, recorded: ReadonlyArray<{ name: string; pid: number }>): Promise<void> {
  const zombieOrGone = async (pid: number) => !alive(pid) || (await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.startsWith('Z') === true
  const left: string[] = []
  for (const p of recorded) if (!await zombieOrGone(p.pid)) left.push(`${p.name} ${p.pid}`)
  t.same(left, [], `none of the ${recorded.length} recorded processes is alive`)
}

t.test('a hub SIGKILLed mid-step: its proxy, user servers and Postgres are stopped too', async t => {
  const out = await outDir(t)
  const config = parseLoadtestConfig(['class-start', '--users', '8', '--arrival', '2s', '--duration', '8s', '--message-interval', '1s',
    '--leave', 'abandon=1', '--out', out, '--label', 'ci-kill', '--live', 'off'], {})
  let target: Target | undefined
  let killed: number | undefined
  let timer: NodeJS.Timeout | undefined
  const result = await runLoadtest(config, {
    log, out: sink, command: 'test',
    onTarget: tg => {
      target = tg
      // once the users are working: every server spawned, then the hub dies
      timer = setTimeout(() => {
        killed = tg.processes.find(p => p.name === 'hub')!.pid()
        if (killed !== undefined) process.kill(killed, 'SIGKILL')
      }, 5000)
    },
  })
  clearTimeout(timer)
  t.ok(killed, 'the hub was killed')
  const recorded = target!.pids!()
  t.same(result.processes, recorded, 'the report lists the processes the target recorded')
  const names = new Set(recorded.map(p => p.name))
  t.ok(names.has('hub') && names.has('postgres') && names.has('hub-child'), `hub, postgres and the hub's children recorded: ${[...names].join(', ')}`)
  t.ok(recorded.filter(p => p.name === 'hub-child').length >= 2, 'the proxy and user servers among them')
  await assertAllGone(t, recorded)
  t.comment(`outlived their orderly stop (stopped by pid): ${JSON.stringify(result.leftovers)}`)
  t.notOk(result.steps[0]!.slo.healthy, 'the step saw the outage')
  // an unhealthy step keeps the processes' logs with the report (the work directory is gone)
  t.ok(result.logs?.includes('logs/hub.log.gz'), `logs kept: ${JSON.stringify(result.logs)}`)
  const hubLog = gunzipSync(await fs.readFile(path.join(result.reportDir!, 'logs', 'hub.log.gz'))).toString()
  t.match(hubLog, /fleethub is running at/, "the hub's own log, as it wrote it")
})

t.test('a run that throws stops every process it started', async t => {
  const out = await outDir(t)
  const config = parseLoadtestConfig(['class-start', '--users', '3', '--arrival', '1s', '--duration', '2s', '--out', out, '--label', 'ci-throw', '--live', 'off'], {})
  let target: Target | undefined
  await t.rejects(runLoadtest(config, {
    log, out: sink, command: 'test', onTarget: tg => { target = tg },
    beforeStop: async () => { throw new Error('boom at the end') },
  }), /boom at the end/)
  t.ok(target, 'the target had started')
  const recorded = target!.pids!()
  t.ok(recorded.length >= 3, `${recorded.length} processes recorded`)
  await assertAllGone(t, recorded)
  const [dir] = await fs.readdir(out).then(xs => xs.filter(x => x.includes('class-start')))
  const report = JSON.parse(await fs.readFile(path.join(out, dir!, 'report.json'), 'utf8')) as RunResult
  t.match(report.interrupted, /^error: boom at the end/, 'the report says how the run ended')
})

t.test('SIGINT to the CLI: the run stops its processes, writes its report and exits 130', async t => {
  const out = await outDir(t)
  const child = spawn(process.execPath, [CLI, 'loadtest', 'class-start', '--users', '6', '--arrival', '2s', '--duration', '60s', '--message-interval', '1s',
    '--out', out, '--label', 'ci-sigint', '--live', 'lines'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let err = ''
  child.stdout!.resume()
  const working = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no user working within 90 s:\n${err}`)), 90_000)
    child.stderr!.on('data', d => {
      err += String(d)
      if (/working=\d/.test(err)) { clearTimeout(timer); resolve() }
    })
  })
  await working
  const exited = once(child, 'exit')
  child.kill('SIGINT')
  const [code] = await Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no exit within 120 s')), 120_000).unref())]) as [number | null]
  t.equal(code, 130, 'exit 130')
  const [dir] = (await fs.readdir(out)).filter(x => x.includes('class-start'))
  const report = JSON.parse(await fs.readFile(path.join(out, dir!, 'report.json'), 'utf8')) as RunResult
  t.equal(report.interrupted, 'SIGINT')
  t.ok(report.processes!.length >= 3, `${report.processes!.length} processes recorded`)
  t.ok(report.processes!.some(p => p.name === 'hub-child'), 'the proxy and user servers among them')
  await assertAllGone(t, report.processes!)
})
