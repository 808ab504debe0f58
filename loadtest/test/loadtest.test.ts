/**
 * The harness end to end against a real fleethub (embedded Postgres, the hub and proxy as the
 * `fleethub start` child, built-in user servers as processes): class-start and api, small. The
 * report's numbers are checked against what the test sees for itself: users and running servers
 * in the hub's database, routes in the proxy, and the users' own echo counters.
 * Needs `npm run build` (the stack runs from dist/).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { parseLoadtestConfig } from '../src/config.js'
import { createLogger } from '../../core/src/log.js'
import { runLoadtest } from '../src/run.js'
import type { Target } from '../src/targets/target.js'

const log = createLogger('silent')
const sink = { write: () => true } as unknown as NodeJS.WritableStream

async function outDir(t: Tap.Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-lt-test-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

interface Seen { users: number; running: number; routes: number; hubApiPid?: number }

async function observe(target: Target): Promise<Seen> {
  const client = new pg.Client({ connectionString: target.databaseUrl })
  await client.connect()
  try {
    const users = Number((await client.query<{ n: string }>("select count(*) as n from users where name like 'lt1u%' and name <> 'lt1uadmin'")).rows[0]!.n)
    const running = Number((await client.query<{ n: string }>("select count(*) as n from servers where state = 'running'")).rows[0]!.n)
    const res = await fetch(`${target.proxyApiUrl}/api/routes`, { headers: { authorization: `token ${target.proxyAuthToken}` } })
    const routes = Object.keys(await res.json() as Record<string, unknown>).filter(k => k.startsWith('/user/')).length
    return { users, running, routes }
  } finally {
    await client.end()
  }
}

t.test('class-start: 20 users, and the report agrees with the database, the proxy and the users', async t => {
  const out = await outDir(t)
  const config = parseLoadtestConfig(['class-start', '--users', '20', '--arrival', '3s', '--duration', '5s', '--message-interval', '1s',
    '--http-interval', '3s', '--leave', 'tidy=0.3,abandon=0.5,silent-ws=0.2', '--out', out, '--label', 'ci', '--live', 'off'], {})
  let seen: Seen | undefined
  const result = await runLoadtest(config, { log, out: sink, command: 'test', beforeStop: async target => { seen = await observe(target) } })
  const step = result.steps[0]!
  t.equal(step.tally.failed, 0, `no user failed (${JSON.stringify(step.notes)})`)
  t.equal(step.tally.users, 20)
  t.ok(seen, 'observed the stack before it stopped')
  t.equal(seen!.users, step.tally.loggedIn, 'logins: report = users in the database')
  t.equal(step.counts.login_ok, step.tally.loggedIn)
  t.equal(step.counts.spawn_ok, step.tally.spawned)
  t.equal(step.tally.stopped, 6, 'the tidy share (30% of 20) stopped their servers')
  t.equal(seen!.running, step.tally.spawned - step.tally.stopped, 'running servers in the database = spawned - stopped')
  t.equal(seen!.routes, seen!.running, 'and each is routed in the proxy')
  t.ok(step.tally.echoes >= 20, `every user's websocket echoed (${step.tally.echoes} echoes)`)

  const report = JSON.parse(await fs.readFile(path.join(result.reportDir!, 'report.json'), 'utf8')) as typeof result
  const r = report.steps[0]!
  t.equal(r.latencies['phase:ws_echo']!.count, step.tally.echoes, "the report's echo count = the users' own counters")
  t.equal(r.latencies['phase:login']!.count, seen!.users, 'one login timed per user in the database')
  t.equal(r.latencies['phase:spawn']!.count, step.tally.spawned)
  t.ok(r.latencies['phase:ws_echo']!.p99 >= r.latencies['phase:ws_echo']!.p50, 'percentiles are ordered')
  t.ok(r.latencies['phase:first_page']!.count === 20, 'every user reached their page')
  t.ok(r.proxyAdded && r.proxyAdded.samples > 5, 'the proxy probe ran')
  t.equal(r.counts['leave:silent-ws'], 4)
  t.ok(r.resources.hub && r.resources.proxy && r.resources.postgres && r.resources.generator, 'every process sampled')
  t.ok(r.resources['user-servers']!.procsMax >= 10, `user servers seen as processes (${r.resources['user-servers']!.procsMax})`)
  t.ok(report.resources.length >= 5, 'a resource sample a second')
  t.ok(r.pgConnectionsMax !== null && r.pgConnectionsMax > 0, 'Postgres connections counted')
  const html = await fs.readFile(path.join(result.reportDir!, 'report.html'), 'utf8')
  t.match(html, /<svg/, 'charts inline')
  t.notMatch(html, /<script|src="http/, 'self-contained')
  const md = await fs.readFile(path.join(result.reportDir!, 'report.md'), 'utf8')
  t.match(md, /Simulated cluster: no/)
  t.match(md, /\| 1 \| 20 \|/)
  const index = await fs.readFile(path.join(out, 'README.md'), 'utf8')
  t.match(index, new RegExp(path.basename(result.reportDir!)), 'the run is in the index')
})

t.test('api: autocannon on the hot endpoints, counted against the requests the hub saw', async t => {
  const out = await outDir(t)
  const config = parseLoadtestConfig(['api', '--users', '20', '--duration', '4s', '--connections', '4', '--out', out, '--label', 'ci', '--live', 'off'], {})
  let activity = -1
  const result = await runLoadtest(config, {
    log, out: sink, command: 'test',
    beforeStop: async target => {
      // activity reports reached the hub: every test user has a last_activity now (flushed within a second)
      const client = new pg.Client({ connectionString: target.databaseUrl })
      await client.connect()
      try {
        for (let i = 0; i < 50; i++) {
          activity = Number((await client.query<{ n: string }>("select count(*) as n from users where name like 'lt1u%' and name <> 'lt1uadmin' and last_activity is not null")).rows[0]!.n)
          if (activity === 20) break
          await new Promise(r => setTimeout(r, 200))
        }
      } finally {
        await client.end()
      }
    },
  })
  const a = result.steps[0]!.autocannon
  t.same(Object.keys(a).sort(), ['GET /api/routes (proxy)', 'GET /hub/api/user (token check)', 'GET /hub/api/users/{name}', 'POST /hub/api/users/{name}/activity'])
  for (const [k, s] of Object.entries(a)) {
    t.ok(s.requests > 10, `${k}: ${s.requests} requests`)
    t.equal(s.non2xx, 0, `${k}: all 2xx`)
    t.equal(result.steps[0]!.counts[`requests:${k}`], s.requests)
  }
  t.equal(activity, 20, 'every user got activity through the API')
})
