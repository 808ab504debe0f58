/**
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group, and a service manager
 * stops a service by signalling its group: every process in it gets the signal at the same moment.
 * `fleethub start` must still stop in order (issue #13): user servers and the proxy before the
 * embedded Postgres, the database recording the servers as stopped, and no process of the stack
 * left running. And if fleethub itself is killed outright, its Postgres and proxy must not linger.
 *
 * Real processes: `fleethub start` from dist/ (run `npm run build` first), spawned so that it leads
 * its own process group as it would in a terminal, with its own embedded Postgres in a temp dir.
 */
import t from 'tap'
import { needs, which } from '../../test/helpers/requirements.js'
import {
  BUILT_IN, checkRunning, describe, exitCode, killLeftovers, leftAfter, leftOf, readProcs, rowsAfterStop, startFleethub, startServer, stackOf, tempDataDir,
} from '../../test/helpers/stack-processes.js'

const singleuser = which('jupyterhub-singleuser')
// Without util-linux's setpriv, fleethub keeps Postgres and the proxy in its own process group, as
// before (core/src/guarded-command.ts): a group signal then reaches them directly.
const NO_SETPRIV = which('setpriv') ? false as const : 'setpriv (util-linux) is not installed, so Postgres and the proxy share fleethub\'s process group'

const servers = [
  { name: 'the built-in server', args: ['--singleuser-cmd', BUILT_IN], skip: NO_SETPRIV },
  // the default command when jupyterhub-singleuser is on PATH, as a new user gets it
  { name: 'jupyterhub-singleuser', args: ['--start-timeout', '60'], skip: NO_SETPRIV || needs(singleuser !== undefined, 'jupyterhub-singleuser is not installed (apt-get install jupyterhub)') },
]

for (const server of servers) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    t.test(`${signal} to fleethub's process group with ${server.name} running stops everything, the server recorded as stopped`, { skip: server.skip }, async t => {
      const dataDir = await tempDataDir(t)
      const hub = await startFleethub(t, dataDir, server.args)
      await startServer(hub.url, 'alice')
      const { stack } = await checkRunning(t, hub, dataDir)

      process.kill(-hub.pid, signal) // the whole group, as a terminal or a service manager does
      t.equal(await exitCode(hub), 0, 'fleethub exits with 0')
      t.notMatch(hub.output(), /shutdown step failed|shutdown failed|database system is shutting down/, 'every shutdown step succeeded')
      const left = await leftAfter(stack)
      t.same(left.map(describe), [], 'no process of the stack is left')
      t.match(await rowsAfterStop(t, dataDir), [{ user: 'alice', state: 'stopped' }], 'the server is recorded as stopped')
    })
  }
}

t.test('fleethub killed outright: Postgres and the proxy stop by themselves; the next start adopts the server and Ctrl-C stops it', { skip: NO_SETPRIV }, async t => {
  const dataDir = await tempDataDir(t)
  const first = await startFleethub(t, dataDir, ['--singleuser-cmd', BUILT_IN])
  await startServer(first.url, 'alice')
  const { stack, serverPid } = await checkRunning(t, first, dataDir)
  const serverProc = stack.find(p => p.pid === serverPid)!

  process.kill(first.pid, 'SIGKILL') // fleethub alone: no shutdown of its own
  t.equal(await exitCode(first), null, 'fleethub is gone')
  const infra = stack.filter(p => p.pid !== first.pid && p.sid !== serverProc.sid)
  const lingering = await leftAfter(infra, 15_000)
  t.same(lingering.map(describe), [], 'Postgres and the proxy noticed and stopped')
  t.ok(leftOf([serverProc]).length > 0, "the user's server keeps running for the next hub to adopt (JupyterHub does the same)")

  const second = await startFleethub(t, dataDir, ['--singleuser-cmd', BUILT_IN])
  const again = await checkRunning(t, second, dataDir, true)
  t.equal(again.serverPid, serverPid, 'the next start adopted the same server')
  process.kill(-second.pid, 'SIGINT')
  t.equal(await exitCode(second), 0, 'fleethub exits with 0')
  t.same((await leftAfter([...stack, ...again.stack])).map(describe), [], 'no process of either stack is left')
  t.match(await rowsAfterStop(t, dataDir), [{ user: 'alice', state: 'stopped' }], 'the server is recorded as stopped')
})
