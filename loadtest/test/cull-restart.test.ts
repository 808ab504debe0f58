/**
 * The `cull` and `restart` scenarios end to end at CI size, against a real fleethub (embedded
 * Postgres, `fleethub start`, its proxy; kube-sim for restart). cull: the idle servers are culled
 * and no active one is, checked in the hub's database too. restart: the proxy, the hub and
 * Postgres each killed and started again mid-load; recovery measured for each, and no session
 * and no server lost. Needs `npm run build` (the stack runs from dist/).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { parseLoadtestConfig } from '../src/config.js'
import { runLoadtest } from '../src/run.js'

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
const log = createLogger('silent')
const sink = { write: () => true } as unknown as NodeJS.WritableStream

async function outDir(t: TapTest): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-lt-cr-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('cull: 20 servers, 5 kept active; the 15 idle are culled, no active one', async t => {
  const out = await outDir(t)
  const config = parseLoadtestConfig(['cull', '--users', '20', '--arrival', '3s', '--duration', '40s', '--cull-timeout', '4s', '--cull-every', '1s',
    '--active-share', '0.25', '--message-interval', '1s', '--out', out, '--label', 'ci', '--live', 'off'], {})
  t.equal(config.activityIntervalMs, 2000, 'servers report activity within half the idle timeout')
  let running: string[] = []
  let culledEvents = -1
  const result = await runLoadtest(config, {
    log, out: sink, command: 'test',
    beforeStop: async target => {
      const client = new pg.Client({ connectionString: target.databaseUrl })
      await client.connect()
      try {
        running = (await client.query<{ name: string }>("select u.name from servers s join users u on u.id = s.user_id where s.state = 'running' and u.name like 'lt1u%' order by u.name")).rows.map(x => x.name)
        culledEvents = Number((await client.query<{ n: string }>('select count(*) as n from cull_events where not dry_run')).rows[0]!.n)
      } finally { await client.end() }
    },
  })
  const s = result.steps[0]!
  t.ok(s.slo.healthy, `healthy: ${s.slo.failures.join('; ')}`)
  t.equal(s.tally.failed, 0)
  t.equal(s.counts['cull:idle_culled'], 15, 'every idle server culled')
  t.equal(s.counts['cull:active_culled'] ?? 0, 0, 'no active server culled')
  t.equal(s.counts['cull:active_checked'], 5, 'five active servers checked at the end')
  t.same(running, ['lt1u0', 'lt1u12', 'lt1u16', 'lt1u4', 'lt1u8'], 'the database agrees: only the active users\' servers run')
  t.ok(culledEvents >= 15, `the culler logged its stops (${culledEvents} events)`)
  const cull = s.latencies['phase:cull']!
  t.equal(cull.count, 15)
  t.ok(cull.p50 >= 4000, `no server culled before its idle timeout (p50 ${cull.p50} ms)`)
  t.ok(cull.max < 4000 + 1000 + 8000, `culled within timeout + a sweep + slack (max ${cull.max} ms)`)
  t.ok(s.latencies['phase:cull_all']!.p50 > 0, 'time to cull them all measured')
  const md = await fs.readFile(path.join(result.reportDir!, 'report.md'), 'utf8')
  t.match(md, /Verdict \(this scenario's own/)
  t.match(md, /\*\*Cull\*\*: 15 idle servers culled; .* Active servers culled: 0 of 5\./)
})

t.test('restart: proxy, hub and Postgres killed mid-load; recovery measured, nothing lost', async t => {
  const out = await outDir(t)
  const config = parseLoadtestConfig(['restart', '--users', '20', '--arrival', '3s', '--duration', '8s', '--message-interval', '1s',
    '--out', out, '--label', 'ci', '--live', 'off'], {})
  t.equal(config.spawner, 'kube-sim', 'user servers outside the hub\'s process tree by default')
  let running = -1
  const result = await runLoadtest(config, {
    log, out: sink, command: 'test',
    beforeStop: async target => {
      const client = new pg.Client({ connectionString: target.databaseUrl })
      await client.connect()
      try {
        running = Number((await client.query<{ n: string }>("select count(*) as n from servers s join users u on u.id = s.user_id where s.state = 'running' and u.name like 'lt1u%'")).rows[0]!.n)
      } finally { await client.end() }
    },
  })
  t.equal(result.target.simulatedCluster, true, 'ran on kube-sim')
  const s = result.steps[0]!
  t.ok(s.slo.healthy, `healthy: ${s.slo.failures.join('; ')}`)
  t.equal(s.tally.failed, 0)
  t.equal(s.counts['restart:users_checked'], 20, 'every user checked after the outages')
  t.equal(s.counts['restart:sessions_lost'] ?? 0, 0, 'no session lost')
  t.equal(s.counts['restart:servers_lost'] ?? 0, 0, 'no server lost')
  t.equal(s.counts['restart:servers_unreachable'] ?? 0, 0, 'every server reachable')
  for (const c of ['proxy', 'hub', 'postgres']) {
    const rec = s.latencies[`phase:recovery_${c}`]
    t.ok(rec && rec.count === 1 && rec.p50 > 0, `recovery after the ${c} measured: ${rec?.p50} ms`)
    t.ok(rec!.p50 >= s.latencies[`phase:restart_${c}`]!.p50, `${c}: served again only after it was up again`)
  }
  t.ok((s.counts['restart:ws_reopened'] ?? 0) >= 20, 'the websockets the outages dropped were reopened')
  t.equal(running, 20, 'the database still lists every server running')
  t.same(result.leftovers, [], 'every process stopped in order')
  const md = await fs.readFile(path.join(result.reportDir!, 'report.md'), 'utf8')
  t.match(md, /\*\*Restart\*\* \(each killed in turn\): proxy up again after [\d.]+ ms, every user served after [\d.]+ ms; hub .*sessions lost 0, servers lost 0/)
})
