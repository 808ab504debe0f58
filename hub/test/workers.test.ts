/**
 * `fleethub start --workers 2` (issue #14): two hub processes behind one hub port (node:cluster),
 * one proxy, one embedded Postgres. Real processes from dist/: the walking-skeleton flow, then a
 * worker SIGKILLed (the primary starts another; the user keeps session and server), then a rolling
 * restart (SIGHUP) under a steady stream of requests (none fails), then Ctrl-C to the group
 * (nothing left, the server recorded as stopped).
 */
import t from 'tap'
import { Browser } from '../../test/helpers/browser.js'
import { waitFor } from '../../test/helpers/wait.js'
import { which } from '../../test/helpers/requirements.js'
import {
  BUILT_IN, CLI, PASSWORD, exitCode, leftAfter, readProcs, rowsAfterStop, startFleethub, stackOf, tempDataDir, type Hub,
} from '../../test/helpers/stack-processes.js'

/** The primary's cluster workers: its children running the same command. */
function workersOf(hub: Hub): number[] {
  return readProcs().filter(p => p.ppid === hub.pid && p.cmd.includes(CLI) && p.state !== 'Z').map(p => p.pid).sort()
}

/** The user's page and their server through the proxy, as the browser has them now. */
async function usable(b: Browser, user: string): Promise<{ home: number; server: number }> {
  const home = await b.fetch('/hub/home')
  const homeText = await home.text()
  const server = await b.go(`/user/${user}/`)
  return { home: home.status === 200 && homeText.includes(user) ? 200 : home.status, server: server.status }
}

t.test('two workers: sign in and spawn, lose a worker, roll both, stop with Ctrl-C', async t => {
  const dataDir = await tempDataDir(t)
  const hub = await startFleethub(t, dataDir, ['--workers', '2', '--singleuser-cmd', BUILT_IN])
  t.match(hub.output(), /\(2 hub workers\)/, 'the banner says how many workers')
  const first = await waitFor('two workers', async () => workersOf(hub).length === 2 ? workersOf(hub) : undefined)
  t.equal(first.length, 2)

  // the walking skeleton, through whichever worker the primary hands each connection to
  const alice = new Browser(hub.url)
  const login = await alice.login('alice', PASSWORD)
  t.equal(login.status, 200, 'signed in')
  await alice.fetch('/hub/spawn')
  const progress = await alice.fetch('/hub/api/users/alice/server/progress', { headers: { referer: `${hub.url}/hub/home` } })
  const events = (await progress.text()).split('\n\n').filter(c => c.startsWith('data: ')).map(c => JSON.parse(c.slice(6)) as { ready?: boolean })
  t.equal(events.at(-1)?.ready, true, 'the server started, and its progress stream said so')
  t.same(await usable(alice, 'alice'), { home: 200, server: 200 }, 'home page and server through the proxy')
  const serverPid = readProcs().find(p => p.cmd.includes(`${CLI} singleuser`) && stackOf(hub.pid).some(s => s.pid === p.pid))?.pid
  t.ok(serverPid, 'the server runs as its own process')

  // a worker dies: the primary starts another; the user notices nothing
  process.kill(first[0]!, 'SIGKILL')
  const second = await waitFor('a replacement worker', async () => {
    const now = workersOf(hub)
    return now.length === 2 && !now.includes(first[0]!) ? now : undefined
  }, 60_000)
  t.ok(second.includes(first[1]!), 'the other worker kept running')
  await waitFor('the replacement is ready', async () => (hub.output().match(/worker ready/g)?.length ?? 0) >= 3 || undefined, 60_000)
  t.same(await usable(alice, 'alice'), { home: 200, server: 200 }, 'session and server survive the loss of a worker')
  t.doesNotThrow(() => process.kill(serverPid!, 0), 'the server process outlived the worker that may have started it')

  // rolling restart under load: every request answered
  const failures: string[] = []
  let requests = 0
  let rolling = true
  const load = (async () => {
    const bob = new Browser(hub.url)
    for (let i = 0; rolling && i < 5000; i++) {
      requests++
      try {
        const r = await usable(alice, 'alice')
        if (r.home !== 200 || r.server !== 200) failures.push(`home ${r.home}, server ${r.server}`)
        if (i % 5 === 0) {
          const page = await bob.fetch('/hub/login')
          await page.arrayBuffer()
          if (page.status !== 200) failures.push(`login page ${page.status}`)
        }
      } catch (err) {
        failures.push(String(err))
      }
    }
  })()
  await new Promise(r => setTimeout(r, 500))
  process.kill(hub.pid, 'SIGHUP')
  await waitFor('the rolling restart', async () => hub.output().includes('rolling restart done') || undefined, 120_000)
  rolling = false
  await load
  const third = workersOf(hub)
  t.equal(third.length, 2, 'two workers after the rolling restart')
  t.notOk(third.some(p => second.includes(p)), 'both were replaced')
  t.ok(requests > 10, `requests kept coming during the restart (${requests})`)
  t.same(failures, [], 'no request failed during the rolling restart')
  t.same(await usable(alice, 'alice'), { home: 200, server: 200 }, 'the session survives the rolling restart')

  // Ctrl-C: the whole group gets SIGINT; the primary stops the workers (one of them the user servers), the proxy, then Postgres.
  // (Without util-linux's setpriv, Postgres and the proxy stay in fleethub's group, as before
  // core/src/guarded-command.ts, and a group signal reaches them at once: signal the primary alone.)
  const stack = stackOf(hub.pid)
  hub.seen.push(...stack)
  process.kill(which('setpriv') ? -hub.pid : hub.pid, 'SIGINT')
  t.equal(await exitCode(hub), 0, 'fleethub exits 0')
  t.same((await leftAfter(stack)).map(p => `${p.pid} ${p.cmd.slice(0, 100)}`), [], 'no process of the stack is left')
  t.notOk(hub.output().includes('shutdown step failed'), 'every shutdown step succeeded')
  t.match(await rowsAfterStop(t, dataDir), [{ user: 'alice', state: 'stopped' }], 'the server is recorded as stopped')
})
