/**
 * Compatibility: the real jupyterhub-singleuser (when installed) runs from the environment the
 * local spawner builds, and our built-in server answers the same requests the same way.
 */
import t from 'tap'
import { join } from 'node:path'
import { pino } from 'pino'
import { builtInServerScript, createLocalProcessSpawner, defaultSingleUserCommand } from '../src/local-process.js'
import type { SpawnSpec } from '../src/spawner.js'
import { startHubPeer } from './singleuser/hub-peer.js'

const jupyter = defaultSingleUserCommand(process.env.PATH)
const servers: Array<[string, string[]]> = [['built-in', [process.execPath, builtInServerScript(), 'singleuser']]]
if (jupyter[0] === 'jupyterhub-singleuser') servers.push(['jupyterhub-singleuser', jupyter])
else t.comment('jupyterhub-singleuser not on PATH: only the built-in server is checked')

for (const [name, cmd] of servers) {
  t.test(`${name}: contract §4 as seen from the hub`, async t => {
    const peer = await startHubPeer({ clientId: 'jupyterhub-user-alice', redirectUri: '/user/alice/oauth_callback' })
    t.teardown(() => peer.close())
    const dir = t.testdir()
    const spawner = createLocalProcessSpawner({ cmd, usersDir: join(dir, 'users'), logDir: join(dir, 'logs'), startTimeoutMs: 60_000, interruptTimeoutMs: 5000 },
      { log: pino({ level: 'silent' }), hubEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8' } })
    const prefix = '/user/alice/'
    const scopes = '["access:servers!server=alice/", "access:servers!user=alice"]'
    const spec: SpawnSpec = { user: 'alice', serverName: '', prefix, userOptions: {}, env: {
      JUPYTERHUB_API_TOKEN: peer.apiToken, JPY_API_TOKEN: peer.apiToken, JUPYTERHUB_API_URL: peer.apiUrl, JUPYTERHUB_USER: 'alice',
      JUPYTERHUB_SERVER_NAME: '', JUPYTERHUB_CLIENT_ID: 'jupyterhub-user-alice', JUPYTERHUB_SERVICE_PREFIX: prefix, JUPYTERHUB_HOST: '',
      JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`, JUPYTERHUB_BASE_URL: '/', JUPYTERHUB_ACTIVITY_URL: `${peer.apiUrl}/users/alice/activity`,
      JUPYTERHUB_OAUTH_ACCESS_SCOPES: scopes, JUPYTERHUB_OAUTH_SCOPES: scopes, JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: '[]',
    } }
    const { url, state } = await spawner.start(spec, { signal: new AbortController().signal, progress: () => {} })
    t.teardown(() => spawner.stop(state, spec))
    t.match(peer.calls[0], { method: 'GET', path: '/hub/api', authorization: undefined }, 'version check first, no auth')
    const ready = await fetch(url + prefix, { redirect: 'manual' })
    t.ok(ready.status >= 300 && ready.status < 400, `readiness poll answered ${ready.status}`)
    t.equal(ready.headers.get('x-jupyterhub-version'), '3.0.0')
    const anon = await fetch(`${url}${prefix}api/status`)
    t.equal(anon.status, 403)
    t.same(await anon.json(), { message: 'Forbidden', reason: null })
    peer.addToken('tok', { kind: 'user', name: 'alice', scopes: ['access:servers!user=alice'], session_id: null })
    const status = await fetch(`${url}${prefix}api/status`, { headers: { authorization: 'token tok' } })
    t.equal(status.status, 200)
    t.match(await status.json(), { connections: 0, kernels: 0, started: /Z$/, last_activity: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/ })
    for (let i = 0; i < 250 && peer.activity.length === 0; i++) await new Promise(r => setTimeout(r, 20))
    const report = JSON.parse(peer.activity[0].body)
    t.match(report, { servers: { '': { last_activity: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/ } }, last_activity: report.servers[''].last_activity })
    t.equal(peer.activity[0].authorization, `token ${peer.apiToken}`)
    await spawner.stop(state, spec)
    t.match(await spawner.poll(state, spec), { running: false })
  })
}
