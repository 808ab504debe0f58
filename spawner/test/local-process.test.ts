import t from 'tap'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { builtInServerScript, createLocalProcessSpawner, defaultSingleUserCommand, type LocalProcessSpawnerConfig } from '../src/local-process.js'
import type { SpawnerState, SpawnProgress, SpawnSpec } from '../src/spawner.js'
import { startHubPeer, type HubPeer } from './singleuser/hub-peer.js'

const BUILT_IN = [process.execPath, builtInServerScript(), 'singleuser']
if (!existsSync(builtInServerScript())) throw new Error('run `npm run build` first: these tests start dist/cli/fleethub.js')

function specFor(peer: HubPeer, user = 'alice', serverName = ''): SpawnSpec {
  const prefix = `/user/${user}/${serverName ? `${serverName}/` : ''}`
  return {
    user, serverName, prefix, userOptions: {},
    env: {
      JUPYTERHUB_API_TOKEN: peer.apiToken, JUPYTERHUB_API_URL: peer.apiUrl, JUPYTERHUB_USER: user, JUPYTERHUB_SERVER_NAME: serverName,
      JUPYTERHUB_CLIENT_ID: `jupyterhub-user-${user}${serverName ? `-${serverName}` : ''}`, JUPYTERHUB_SERVICE_PREFIX: prefix,
      JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`, JUPYTERHUB_BASE_URL: '/',
      JUPYTERHUB_ACTIVITY_URL: `${peer.apiUrl}/users/${user}/activity`,
      JUPYTERHUB_OAUTH_ACCESS_SCOPES: JSON.stringify([`access:servers!server=${user}/${serverName}`, `access:servers!user=${user}`]),
    },
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try { return !/^\S+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false }
}

async function setup(t: Tap.Test, config: LocalProcessSpawnerConfig = {}) {
  const peer = await startHubPeer({ clientId: 'jupyterhub-user-alice', redirectUri: '/user/alice/oauth_callback' })
  t.teardown(() => peer.close())
  const dir = t.testdir()
  const spawner = createLocalProcessSpawner({ cmd: BUILT_IN, usersDir: join(dir, 'users'), logDir: join(dir, 'logs'), startTimeoutMs: 20_000, ...config }, {
    log: pino({ level: 'silent' }),
    hubEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8', SHELL: '/bin/bash', HUB_SECRET: 'must-not-leak' },
  })
  t.teardown(() => spawner.close())
  const events: SpawnProgress[] = []
  const saved: SpawnerState[] = []
  const ac = new AbortController()
  const options = { signal: ac.signal, progress: (e: SpawnProgress) => { events.push(e) }, saveState: (s: SpawnerState) => { saved.push(s) } }
  /** Stop whatever a test started, even when it fails half-way. */
  t.teardown(async () => { for (const s of saved) if (typeof s.pid === 'number' && alive(s.pid)) try { process.kill(-s.pid, 'SIGKILL') } catch { /* gone */ } })
  return { peer, dir, spawner, events, saved, options, ac }
}

t.test('built-in server: start, reachable, poll, stop, stop again', async t => {
  const { peer, dir, spawner, events, saved, options } = await setup(t, { env: { FROM_CONFIG: 'yes' } })
  const spec = specFor(peer)
  const started = await spawner.start(spec, options)
  const { pid, port } = started.state as { pid: number, port: number }
  t.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.ok(port >= 20000 && port < 32768, `port ${port} below the ephemeral range`)
  t.same(saved[0], started.state, 'state saved before start resolved')
  t.match(events, [{ progress: 50, message: 'Spawning server...' }, { message: `Server process started, pid ${pid}` }, { progress: 70, message: `Server listening on port ${port}` }])

  const environ = new Map(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
  t.equal(environ.get('JUPYTERHUB_SERVICE_URL'), `${started.url}/user/alice/`)
  t.equal(environ.get('USER'), 'alice')
  t.equal(environ.get('HOME'), join(dir, 'users', 'alice'))
  t.equal(environ.get('SHELL'), '/bin/bash')
  t.equal(environ.get('PATH'), process.env.PATH)
  t.equal(environ.get('LANG'), 'C.UTF-8')
  t.equal(environ.get('FROM_CONFIG'), 'yes')
  t.equal(environ.get('JUPYTERHUB_API_TOKEN'), peer.apiToken)
  t.notOk(environ.has('HUB_SECRET'), 'only env_keep variables come from the hub')
  t.equal(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[2], String(pid), 'leads its own process group')

  const anon = await fetch(`${started.url}/user/alice/`, { redirect: 'manual' })
  t.equal(anon.status, 302, 'readiness poll: unauthenticated -> OAuth, < 500')
  peer.addToken('tok', { kind: 'user', name: 'alice', scopes: ['access:servers!user=alice'], session_id: null })
  const page = await fetch(`${started.url}/user/alice/`, { headers: { authorization: 'token tok' } })
  t.equal(page.status, 200)
  t.match(await page.text(), /fleethub server of alice/)
  t.same(await spawner.poll(started.state, spec), { running: true })
  t.match(readFileSync(join(dir, 'logs', 'alice.log'), 'utf8'), /single-user server listening/, 'server output goes to its log file')

  await spawner.stop(started.state, spec)
  t.notOk(alive(pid), 'pid gone')
  t.match(readFileSync(join(dir, 'logs', 'alice.log'), 'utf8'), /"signal":"SIGINT".*"msg":"stopping"/, 'stopped gracefully by the first SIGINT')
  t.match(await spawner.poll(started.state, spec), { running: false })
  await spawner.stop(started.state, spec)
  t.pass('second stop resolves')
})

t.test('a command that does not exist', async t => {
  const { peer, spawner, options } = await setup(t, { cmd: ['/nonexistent/jupyterhub-nothing'] })
  await t.rejects(spawner.start(specFor(peer), options), { name: 'SpawnerError', code: 'SPAWNER_COMMAND_NOT_FOUND', message: /"\/nonexistent\/jupyterhub-nothing" was not found/ })
})

t.test('a command that exits at once: its code and log tail, nothing left', async t => {
  const { peer, spawner, options, saved } = await setup(t, { cmd: [process.execPath, '-e', "console.error('boom: no notebook here'); process.exit(3)"] })
  await t.rejects(spawner.start(specFor(peer), options), { code: 'SPAWNER_EXITED', message: /exited at once with code 3\.\nLast lines of its log:\n[\s\S]*boom: no notebook here/ })
  t.equal(saved.length, 1)
  t.notOk(alive(saved[0].pid as number))
})

t.test('a command that never listens: bounded by the start timeout, whole group killed', async t => {
  const script = "const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); console.log('grandchild=' + c.pid); setInterval(() => {}, 1000)"
  const { peer, dir, spawner, options, saved } = await setup(t, { cmd: [process.execPath, '-e', script], startTimeoutMs: 1500 })
  const t0 = Date.now()
  await t.rejects(spawner.start(specFor(peer), options), { code: 'SPAWNER_START_TIMEOUT', message: /did not start listening within 1.5 s/ })
  t.ok(Date.now() - t0 < 10_000, 'gave up in bounded time')
  const grandchild = Number(/grandchild=(\d+)/.exec(readFileSync(join(dir, 'logs', 'alice.log'), 'utf8'))?.[1])
  t.ok(grandchild > 0, 'the server had started a child of its own')
  for (let i = 0; i < 100 && alive(grandchild); i++) await new Promise(r => setTimeout(r, 20))
  t.notOk(alive(saved[0].pid as number), 'server gone')
  t.notOk(alive(grandchild), 'its child gone too (group kill)')
})

t.test('abort via the signal kills and rejects', async t => {
  const { peer, spawner, options, saved, ac } = await setup(t, { cmd: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] })
  const start = spawner.start(specFor(peer), { ...options, saveState: s => { saved.push(s); setTimeout(() => ac.abort(), 50) } })
  await t.rejects(start, { code: 'SPAWNER_ABORTED' })
  t.notOk(alive(saved[0].pid as number))
  await t.rejects(spawner.start(specFor(peer), options), { code: 'SPAWNER_ABORTED' }, 'an already aborted signal starts nothing')
  t.equal(saved.length, 1)
})

t.test('stop escalates SIGINT -> SIGTERM -> SIGKILL for a server that ignores the polite ones', async t => {
  const stubborn = "process.on('SIGINT', () => {}); process.on('SIGTERM', () => {}); const u = new URL(process.env.JUPYTERHUB_SERVICE_URL); require('net').createServer().listen(u.port, u.hostname)"
  const { peer, spawner, options } = await setup(t, { cmd: [process.execPath, '-e', stubborn], interruptTimeoutMs: 300, termTimeoutMs: 300 })
  const spec = specFor(peer)
  const { state } = await spawner.start(spec, options)
  const t0 = Date.now()
  await spawner.stop(state, spec)
  t.notOk(alive(state.pid as number))
  t.ok(Date.now() - t0 >= 550, 'waited through SIGINT and SIGTERM first')
})

t.test('pid-reuse guard: a state whose start time does not match is never signalled', async t => {
  const { peer, spawner, options } = await setup(t)
  const spec = specFor(peer)
  const { state } = await spawner.start(spec, options)
  const forged = { ...state, startTime: (state.startTime as number) - 1 }
  t.match(await spawner.poll(forged, spec), { running: false })
  await spawner.stop(forged, spec)
  t.ok(alive(state.pid as number), 'the real process was left alone')
  t.same(await spawner.poll(state, spec), { running: true })
  t.match(await spawner.poll({ pid: 'x' }, spec), { running: false }, 'garbage state is not running')
  await spawner.stop({}, spec)
  await spawner.stop(state, spec)
  t.notOk(alive(state.pid as number))
})

t.test('a new spawner adopts a running server from its state (hub restart)', async t => {
  const { peer, dir, spawner, options } = await setup(t)
  const spec = specFor(peer)
  const { state } = await spawner.start(spec, options)
  const other = createLocalProcessSpawner({ cmd: BUILT_IN, usersDir: join(dir, 'users'), logDir: join(dir, 'logs') }, { log: pino({ level: 'silent' }), hubEnv: {} })
  t.same(await other.poll(state, spec), { running: true })
  await other.stop(state, spec)
  t.notOk(alive(state.pid as number))
  t.match(await spawner.poll(state, spec), { running: false })
})

t.test('defaultSingleUserCommand: jupyterhub-singleuser when on PATH, else the built-in server', async t => {
  const dir = t.testdir({})
  t.same(defaultSingleUserCommand(dir), BUILT_IN)
  t.ok(existsSync(BUILT_IN[1]))
  writeFileSync(join(dir, 'jupyterhub-singleuser'), '#!/bin/sh\n')
  chmodSync(join(dir, 'jupyterhub-singleuser'), 0o755)
  t.same(defaultSingleUserCommand(dir), process.getuid?.() === 0 ? ['jupyterhub-singleuser', '--allow-root'] : ['jupyterhub-singleuser'])
})

t.test('a port lost to a race is retried on another port, a bounded number of times', async t => {
  // `fleethub singleuser` exits 98 when its port is taken; this one always does.
  const { peer, spawner, options, saved } = await setup(t, { cmd: [process.execPath, '-e', 'process.exit(98)'] })
  await t.rejects(spawner.start(specFor(peer), options), { code: 'SPAWNER_PORT_IN_USE' })
  t.equal(saved.length, 3, 'three attempts')
  t.equal(new Set(saved.map(s => s.port)).size, 3, 'each on its own port')
})
