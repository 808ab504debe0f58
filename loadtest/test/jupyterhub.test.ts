/**
 * `--target jupyterhub` end to end: Debian's JupyterHub 3.0 with configurable-http-proxy 5.3 and
 * its spawner asking sim-servers for virtual servers (loadtest/jupyterhub/jupyterhub_config.py),
 * driven by the same simulated users as fleethub. The report's counts are checked against what the
 * test sees for itself: sim-servers' own counters, JupyterHub's REST API and CHP's routes.
 * Skipped (as a skipped subtest saying why) where jupyterhub is not installed. Needs `npm run build`.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { parseLoadtestConfig } from '../src/config.js'
import { runLoadtest } from '../src/run.js'
import { jupyterhubUnavailable, psycopg2Available } from '../src/targets/jupyterhub.js'
import type { Target } from '../src/targets/target.js'
import { missingPackage, needs } from '../../test/helpers/requirements.js'

const log = createLogger('silent')
const sink = { write: () => true } as unknown as NodeJS.WritableStream

interface Seen {
  sim: { running: number; started: number; stopped: number; failed: number; users: number }
  users: number
  ready: number
  admin: boolean
  routes: number
  hubPid?: number
}

async function observe(target: Target): Promise<Seen> {
  const sim = await (await fetch(`${target.simServers!.url}/stats`, { headers: { authorization: `token ${target.simServers!.token}` } })).json() as Seen['sim']
  const res = await fetch(`${target.hubUrl}/hub/api/users?limit=200`, { headers: { authorization: `token ${target.serviceToken}` } })
  const users = await res.json() as Array<{ name: string; admin: boolean; servers?: Record<string, { ready: boolean }> }>
  const students = users.filter(u => /^lt1u\d+$/.test(u.name))
  const routesRes = await fetch(`${target.proxyApiUrl}/api/routes`, { headers: { authorization: `token ${target.proxyAuthToken}` } })
  const routes = Object.keys(await routesRes.json() as Record<string, unknown>).filter(k => k.startsWith('/user/')).length
  return {
    sim, users: students.length, ready: students.filter(u => u.servers?.['']?.ready === true).length,
    admin: users.some(u => u.name === 'lt1uadmin' && u.admin), routes, hubPid: target.processes.find(p => p.name === 'hub')?.pid(),
  }
}

async function outDir(t: Tap.Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-lt-jh-test-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}
type Tap = typeof t
declare namespace Tap { type Test = typeof t }

const alive = (pid: number | undefined) => { if (pid === undefined) return false; try { process.kill(pid, 0); return true } catch { return false } }

const missing = jupyterhubUnavailable()
if (missing) {
  // a skipped subtest that says why; it runs wherever jupyterhub is installed
  missingPackage(t, 'class-start and api against JupyterHub 3.0', missing)
} else {
  t.test('class-start: 10 users against JupyterHub 3.0, and the report agrees with sim-servers, the hub and CHP', async t => {
    const out = await outDir(t)
    const config = parseLoadtestConfig(['class-start', '--target', 'jupyterhub', '--users', '10', '--arrival', '2s', '--duration', '4s', '--message-interval', '1s',
      '--http-interval', '2s', '--server-start-time', '200ms-600ms', '--leave', 'tidy=0.3,abandon=0.5,silent-ws=0.2', '--out', out, '--label', 'ci', '--live', 'off'], {})
    let seen: Seen | undefined
    const result = await runLoadtest(config, { log, out: sink, command: 'test', beforeStop: async target => { seen = await observe(target) } })
    const step = result.steps[0]!
    t.equal(step.tally.failed, 0, `no user failed (${JSON.stringify(step.notes)})`)
    t.equal(step.tally.users, 10)
    t.ok(seen, 'observed the stack before it stopped')
    // logins: the report = users JupyterHub has
    t.equal(step.counts.login_ok, 10)
    t.equal(seen!.users, step.tally.loggedIn, 'logins: report = users in JupyterHub (REST API)')
    t.equal(step.latencies['phase:login']!.count, seen!.users)
    // spawns: the report = servers sim-servers started, and = what the hub and its proxy hold
    t.equal(step.counts.spawn_ok, step.tally.spawned)
    t.equal(seen!.sim.started, step.tally.spawned, 'spawns: report = servers sim-servers started')
    t.equal(seen!.sim.users, step.tally.spawned, 'one server per user')
    t.equal(seen!.sim.failed, 0)
    t.equal(step.tally.stopped, 3, 'the tidy share (30% of 10) stopped their servers')
    t.equal(seen!.sim.stopped, step.tally.stopped, 'stops: report = servers sim-servers stopped')
    t.equal(seen!.sim.running, step.tally.spawned - step.tally.stopped, 'running in sim-servers = spawned - stopped')
    t.equal(seen!.ready, seen!.sim.running, 'JupyterHub sees the same servers ready')
    t.equal(seen!.routes, seen!.sim.running, 'and CHP routes each of them')
    // echoes: the report = the users' own counters, at least one per user, through CHP to the virtual servers
    t.ok(step.tally.echoes >= 10, `every user's websocket echoed (${step.tally.echoes})`)
    t.equal(step.latencies['phase:ws_echo']!.count, step.tally.echoes)
    t.equal(step.latencies['phase:first_page']!.count, 10, 'every user reached their page (OAuth with JupyterHub 3.0)')
    t.equal(step.counts['leave:silent-ws'], 2)
    t.ok(step.proxyAdded && step.proxyAdded.samples > 3, 'CHP added latency probed')
    t.ok(step.resources.hub && step.resources.proxy && step.resources['sim-servers'] && step.resources.generator, 'jupyterhub, CHP, sim-servers and the generator sampled')
    t.notOk(alive(seen!.hubPid), 'jupyterhub stopped after the run')
    const md = await fs.readFile(path.join(result.reportDir!, 'report.md'), 'utf8')
    t.match(md, /kind=jupyterhub/)
    t.match(md, /sqlite/, 'the report says JupyterHub ran on sqlite')
    t.match(md, /Simulated cluster: no \(no cluster: virtual servers in sim-servers\)/)
    t.match(await fs.readFile(path.join(result.reportDir!, 'report.html'), 'utf8'), /<svg/)
  })

  t.test('api: the hot endpoints of JupyterHub with a minted admin token', async t => {
    const out = await outDir(t)
    const config = parseLoadtestConfig(['api', '--target', 'jupyterhub', '--users', '5', '--duration', '4s', '--connections', '2', '--out', out, '--label', 'ci', '--live', 'off'], {})
    let seen: Seen | undefined
    const result = await runLoadtest(config, { log, out: sink, command: 'test', beforeStop: async target => { seen = await observe(target) } })
    const a = result.steps[0]!.autocannon
    t.same(Object.keys(a).sort(), ['GET /api/routes (proxy)', 'GET /hub/api/user (token check)', 'GET /hub/api/users/{name}', 'POST /hub/api/users/{name}/activity'])
    for (const [k, s] of Object.entries(a)) {
      t.ok(s.requests > 5, `${k}: ${s.requests} requests`)
      t.equal(s.non2xx, 0, `${k}: all 2xx`)
    }
    t.equal(seen!.users, 5, 'the api step created its users in JupyterHub')
    t.ok(seen!.admin, 'the admin user the token was minted for is an admin')
  })

  // JupyterHub on a Postgres of its own (set up as fleethub's), for same-database comparisons
  const noPsycopg = needs(psycopg2Available(), 'python3-psycopg2 is not installed for JupyterHub\'s Python (.ci/run installs it)')
  t.test('api with --jupyterhub-db postgres: JupyterHub keeps its users in its own Postgres', { skip: noPsycopg }, async t => {
    const out = await outDir(t)
    const config = parseLoadtestConfig(['api', '--target', 'jupyterhub', '--jupyterhub-db', 'postgres', '--users', '3', '--duration', '3s', '--connections', '2', '--out', out, '--label', 'ci-pg', '--live', 'off'], {})
    let names: string[] = []
    const result = await runLoadtest(config, {
      log, out: sink, command: 'test',
      beforeStop: async target => {
        const client = new pg.Client({ connectionString: target.databaseUrl })
        await client.connect()
        try { names = (await client.query<{ name: string }>('select name from users order by name')).rows.map(r => r.name) } finally { await client.end() }
      },
    })
    t.same(names.filter(n => /^lt1u\d+$/.test(n)).length, 3, 'the users JupyterHub created are rows in its Postgres')
    t.ok(names.includes('lt1uadmin'))
    for (const [k, s] of Object.entries(result.steps[0]!.autocannon)) t.equal(s.non2xx, 0, `${k}: all 2xx`)
    const md = await fs.readFile(path.join(result.reportDir!, 'report.md'), 'utf8')
    t.match(md, /database=postgres: embedded/, 'the report says JupyterHub ran on Postgres')
  })
}
