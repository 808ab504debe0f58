/**
 * A rolling restart in the middle of a class start (issue #14): `fleethub start --workers 2` on
 * kube-sim, 200 simulated students arriving over ~15 s (loadtest/src/simulated-user.ts: the login
 * form, a spawn, its progress stream, OAuth through the proxy to /user/<name>/, a kernel-like
 * websocket with echoes), and SIGHUP to the primary while their spawns are in flight; the later
 * arrivals are held until each old worker begins to drain, so both drains meet logins, spawns and
 * progress streams whatever the machine's speed. No request
 * fails: every student ends working, no response is a 5xx or a network error, no websocket closes
 * before its student closes it; both workers are replaced; Ctrl-C then stops everything.
 *
 * The students' progress stream is read as the spawn-pending page's EventSource reads it
 * (hub/src/servers/server-pages.ts): a stream that ends before its last event is opened again (a
 * browser does that by itself) and counted; a stream cut by an error is a failure.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { SimulatedUser, UserError } from '../../loadtest/src/simulated-user.js'
import { Recorder } from '../../loadtest/src/histogram.js'
import { waitFor } from '../../test/helpers/wait.js'
import { which } from '../../test/helpers/requirements.js'
import {
  CLI, PASSWORD, exitCode, leftAfter, readProcs, startFleethub, stackOf, tempDataDir, type Hub,
} from '../../test/helpers/stack-processes.js'

// a class start and a rolling restart on a shared 2-core machine: more than the suite's 300 s default
t.setTimeout(600_000)

const USERS = 200
const ARRIVAL_MS = 15_000
/** Students between arriving and working (login, spawn, first page, websocket) at once. */
const IN_FLIGHT = 40
/** SIGHUP once this many students have a running server: the rest are still arriving or spawning. */
const SIGHUP_AFTER = 40
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts/workers-rolling')

/** The primary's cluster workers: its children running the same command. */
function workersOf(hub: Hub): number[] {
  return readProcs().filter(p => p.ppid === hub.pid && p.cmd.includes(CLI) && p.state !== 'Z').map(p => p.pid).sort()
}

/** Every response a student got, by status (`network` for a request that got none). */
const statuses = new Map<string, number>()

/** A simulated student whose every response is counted (its progress stream reconnects as an EventSource does: SimulatedUser.followProgress). */
class Student extends SimulatedUser {
  override async request(...args: Parameters<SimulatedUser['request']>): ReturnType<SimulatedUser['request']> {
    try {
      const res = await super.request(...args)
      const key = res.status >= 500 ? `${res.status} ${args[0]} ${args[1]}` : String(res.status)
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
      return res
    } catch (err) {
      statuses.set('network', (statuses.get('network') ?? 0) + 1)
      throw err
    }
  }
}

/**
 * kube-sim as a process (servers are cheap virtual ones), stopped by pid at teardown. Pods take
 * 1-20 s to start: about half the spawns outlast the API's 10 s wait (202) and are followed on
 * their progress stream, some of them across a drain.
 */
async function startKubeSim(t: Test, dir: string): Promise<string> {
  const kubeconfig = path.join(dir, 'kubeconfig.json')
  const log = fs.openSync(path.join(dir, 'kube-sim.log'), 'a')
  const child = spawn(process.execPath, [CLI, 'kube-sim', '--write-kubeconfig', kubeconfig, '--runtime', 'singleuser', '--log-level', 'warn',
    '--start-time', '1000ms-20000ms', '--nodes', '4', '--node-pods', '110'], { stdio: ['ignore', log, log] })
  fs.closeSync(log)
  const exited = new Promise(r => child.once('exit', r))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise(r => setTimeout(r, 10_000).unref())])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  })
  await waitFor('kube-sim', async () => {
    if (child.exitCode !== null) throw new Error(`kube-sim exited with ${child.exitCode}: ${fs.readFileSync(path.join(dir, 'kube-sim.log'), 'utf8')}`)
    return fs.existsSync(kubeconfig) || undefined
  }, 30_000)
  return kubeconfig
}

t.test(`a rolling restart in the middle of a ${USERS}-user class start: nobody notices`, { timeout: 600_000 }, async t => {
  const dataDir = await tempDataDir(t)
  const kubeconfig = await startKubeSim(t, dataDir)
  process.env.KUBECONFIG = kubeconfig // startFleethub passes this process's environment on
  const hub = await startFleethub(t, dataDir, ['--workers', '2', '--spawner', 'kubernetes', '--start-timeout', '120'])
  const before = await waitFor('two workers', async () => workersOf(hub).length === 2 ? workersOf(hub) : undefined, 60_000)
  let over = false
  t.teardown(() => {
    over = true
    // what went wrong, if anything did: the whole stack's log (primary, workers, proxy), git-ignored
    if (t.passing()) return
    fs.mkdirSync(ARTIFACTS, { recursive: true })
    fs.writeFileSync(path.join(ARTIFACTS, 'fleethub.log'), hub.output())
  })

  // the class arrives; each student works until the restart is over and a little after
  const recorder = new Recorder()
  let workUntil = Number.POSITIVE_INFINITY
  const failures: string[] = []
  let arriving = 0
  const waiters: Array<() => void> = []
  const slot = async () => {
    if (arriving >= IN_FLIGHT) await new Promise<void>(r => waiters.push(r))
    arriving++
  }
  const release = () => { arriving--; waiters.shift()?.() }
  let working = 0
  const students = Array.from({ length: USERS }, (_, i) => new Student({
    base: hub.url, name: `rs${i + 1}`, password: PASSWORD, leave: 'tidy', recorder,
    get workUntil() { return workUntil },
    messageIntervalMs: 1000, httpIntervalMs: 4000, spawnTimeoutMs: 240_000,
  }))
  // Each retiring worker starts its drain with students still arriving: the second half of the
  // class waits for the first drain (whenever the machine gets there), the last quarter for the second.
  // (If a drain never begins, they go at the deadline and the wait for "rolling restart done" fails the test.)
  const drainsBegun = (n: number) => waitFor(`drain ${n}`, async () => {
    if (over) throw new Error('the test is over')
    return (hub.output().match(/"drainMs":30000,"msg":"worker shutting down"/g)?.length ?? 0) >= n || undefined
  }, 400_000, 200).catch(() => undefined)
  const firstDrain = drainsBegun(1)
  const secondDrain = drainsBegun(2)
  const visits = students.map(async (s, i) => {
    await new Promise(r => setTimeout(r, Math.round(i * ARRIVAL_MS / USERS)))
    if (i >= USERS / 2) await firstDrain
    if (i >= USERS * 3 / 4) await secondDrain
    await slot()
    let arrived = false
    try {
      await s.login()
      await s.spawn()
      await s.firstPage()
      await s.openWebsocket()
      arrived = true
      release()
      working++
      await s.work()
      await s.leave()
    } catch (err) {
      if (!arrived) release()
      failures.push(`${s.o.name}: ${err instanceof UserError ? err.code : 'exception'}: ${(err as Error).message}`)
      s.close()
    }
  })

  await waitFor(`${SIGHUP_AFTER} students working`, async () => working >= SIGHUP_AFTER || failures.length > 0 || undefined, 240_000, 50)
  const workingAtSighup = working
  process.kill(hub.pid, 'SIGHUP')
  const sighupAt = performance.now()
  await waitFor('the rolling restart', async () => hub.output().includes('rolling restart done') || undefined, 300_000, 200)
  const restartMs = Math.round(performance.now() - sighupAt)
  t.ok(workingAtSighup < USERS, `the restart began with spawns still to come (${workingAtSighup} of ${USERS} working)`)
  const after = workersOf(hub)
  const arrivedBeforeDone = working
  workUntil = performance.now() + 5000
  let late: NodeJS.Timeout | undefined
  await Promise.race([Promise.all(visits), new Promise(r => { late = setTimeout(r, 300_000) })])
  clearTimeout(late)

  t.same(failures, [], 'no student failed')
  t.equal(students.filter(s => s.tally.spawned && s.tally.stopped).length, USERS, 'every student spawned, worked and left')
  t.same([...statuses.keys()].filter(k => k === 'network' || Number(k.split(' ')[0]) >= 500), [], 'no 5xx and no request without an answer')
  t.same(Object.entries(recorder.counts()).filter(([k]) => k.startsWith('error:') || k.startsWith('failed')), [], 'no websocket dropped, no echo lost, no error counted')
  t.ok(students.every(s => s.tally.echoes > 0 && s.tally.echoes === s.tally.messagesSent), 'every message sent was echoed')
  t.equal(after.length, 2, 'two workers after the rolling restart')
  t.notOk(after.some(p => before.includes(p)), `both workers were replaced (${before.join(',')} -> ${after.join(',')})`)
  t.comment(`responses: ${JSON.stringify(Object.fromEntries(statuses))}; progress streams reopened: ${recorder.counts().progress_reopened ?? 0}; ` +
    `working at SIGHUP: ${workingAtSighup}, at "rolling restart done": ${arrivedBeforeDone} (${restartMs} ms later)`)

  // Ctrl-C: the primary stops the workers (one of them the user servers), the proxy, then Postgres.
  const stack = stackOf(hub.pid)
  hub.seen.push(...stack)
  process.kill(which('setpriv') ? -hub.pid : hub.pid, 'SIGINT')
  t.equal(await exitCode(hub, 180_000), 0, 'fleethub exits 0')
  t.same((await leftAfter(stack)).map(p => `${p.pid} ${p.cmd.slice(0, 100)}`), [], 'no process of the stack is left')
  t.notOk(hub.output().includes('shutdown step failed'), 'every shutdown step succeeded')
})
