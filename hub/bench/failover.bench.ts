/**
 * Failover timings of a fleet of hubs (issue #14, "Benchmarks to commit"): two `fleethub hub`
 * processes (from dist/) over one embedded Postgres, one shared proxy (`fleethub proxy`), the
 * Kubernetes spawner against kube-sim with a long container start (so spawns stay in flight). Each
 * round:
 *
 * 1. the hub holding the culler lease (and, normally, the routes lease) gets `--spawns` spawn
 *    requests (straight to its port, so it claims and owns them: servers.owner); once every one is
 *    `pending` and `--kill-after` has passed since the claims, it is SIGKILLed;
 * 2. measured from the SIGKILL, polling every 10 ms:
 *    (a) lease takeover, two ways: in Postgres (pg_locks: the advisory lock granted to the other
 *        hub's lease connection, keys in hub/src/fleet/fleet.ts) and as the other hub says it
 *        (its /hub/metrics `fleethub_lease_held{lease=…}` = 1), for `culler` and `routes`;
 *    (b) every in-flight spawn the killed hub owned leaving `pending` (finished: running, or failed:
 *        stopped with last_error; hub/src/servers/owner-sweep.ts);
 * 3. a fresh hub replaces the killed one (the next round kills the other), so rounds alternate.
 *
 * Bounds the code states (compared in the report): lease takeover at most one lease tick (1 s)
 * after the holder's connection closes (hub/src/fleet/leases.ts); orphaned spawns failed ≤ 4 s
 * after a SIGKILL (hub/src/servers/owner-sweep.ts: the next sweep ≤ 1 s, one lease tick more when
 * the dead hub held `poll`, never before GRACE_MS = 2 s after the claim).
 *
 *   npm run build && npm run bench:failover [-- --rounds 5 --spawns 5 --kill-after 3 --label NAME --out bench-results]
 *   writes bench-results/<date>-failover[-NAME]/{result.json,README.md}
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import { existsSync, openSync, closeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { createDb, migrateToLatest } from '../src/db.js'
import { freeLowPort, startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { connectionName, LOCK_SPACE, PROXY_LOCK_SPACE } from '../src/fleet/fleet.js'
import { GRACE_MS } from '../src/servers/owner-sweep.js'
import { createLogger } from '../../core/src/log.js'
import { createToken } from '../src/tokens/token.repository.js'

const { values } = parseArgs({ options: {
  rounds: { type: 'string', default: '5' }, spawns: { type: 'string', default: '5' },
  // seconds between the last claim and the SIGKILL (GRACE_MS = 2 s: a younger claim is not swept yet)
  'kill-after': { type: 'string', default: '3' },
  // kube-sim's container start time: long, so the spawns are still in flight at the kill
  'start-time': { type: 'string', default: '20s-20s' },
  out: { type: 'string', default: 'bench-results' }, label: { type: 'string' },
  // keep the hubs' logs here (default: deleted with the temporary directory)
  logs: { type: 'string' },
} })
const ROUNDS = int(values.rounds!, '--rounds', 1, 50)
const SPAWNS = int(values.spawns!, '--spawns', 1, 100)
const KILL_AFTER_MS = Number(values['kill-after']) * 1000
if (!Number.isFinite(KILL_AFTER_MS) || KILL_AFTER_MS < 0 || KILL_AFTER_MS > 60_000) throw new Error('--kill-after: seconds, 0..60')
const POLL_MS = 10
const LIMIT_MS = 60_000
const LEASE_TICK_MS = 1000 // leases.ts default, what `fleethub hub` runs with
const CLI = path.resolve('dist/cli/fleethub.js')
const progress = (msg: string) => process.stderr.write(`[failover] ${msg}\n`)

function int(text: string, what: string, min: number, max: number): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${what}: an integer ${min}..${max}, got ${JSON.stringify(text)}`)
  return n
}

interface Hub { readonly name: string; readonly child: ChildProcess; readonly url: string; hubId: string }

interface Round {
  round: number
  killed: string
  killedHubId: string
  survivor: string
  /** Leases the killed hub held just before the kill (pg_locks). */
  heldBefore: string[]
  /** The longest poll step of the round (queries + sleep): each time is late by at most this much. */
  pollStepMaxMs: number
  /** ms from SIGKILL: the lock granted to the survivor's lease connection (pg_locks), and the survivor's own metric. */
  lease: Record<string, { pgMs: number | null; metricMs: number | null }>
  spawns: {
    owned: number
    requested: number
    /** ms from the last claim to the SIGKILL. */
    claimAgeAtKillMs: number
    /** ms from SIGKILL until every owned spawn left `pending`; null when one was still pending at the limit. */
    allDoneMs: number | null
    perSpawnMs: number[]
    outcomes: Record<string, number>
    errors: string[]
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)
  const log = createLogger('warn')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-failover-'))
  await fs.chmod(dir, 0o755) // the embedded Postgres runs as another OS user and must enter it
  const logDir = values.logs ? path.resolve(values.logs) : dir
  await fs.mkdir(logDir, { recursive: true })
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log, settings: { fsync: 'off', synchronous_commit: 'off' } })
  const { db } = createDb({ url: pg.url, poolSize: 3 })
  const children = new Set<ChildProcess>()
  const rounds: Round[] = []
  const startedAt = new Date().toISOString()
  const loadStart = os.loadavg()
  const logFd = (name: string) => openSync(path.join(logDir, `${name}.log`), 'a')
  try {
    await migrateToLatest(db)
    const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
    const token = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
    const secrets = {
      CONFIGPROXY_AUTH_TOKEN: randomBytes(24).toString('hex'), FLEETHUB_DEV_PASSWORD: randomBytes(12).toString('hex'),
      FLEETHUB_OIDC_STATE_SECRET: randomBytes(32).toString('base64url'),
    }
    // kube-sim: a long container start, so spawns stay pending
    const kubeconfig = path.join(dir, 'kubeconfig.json')
    let fd = logFd('kube-sim')
    const kube = spawn(process.execPath, [CLI, 'kube-sim', '--write-kubeconfig', kubeconfig, '--runtime', 'singleuser', '--log-level', 'warn', '--start-time', values['start-time']!],
      { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    children.add(kube)
    for (let i = 0; i < 300 && !existsSync(kubeconfig); i++) await new Promise(r => setTimeout(r, 100))
    if (!existsSync(kubeconfig)) throw new Error('kube-sim did not start')
    // the shared proxy: a process no hub owns
    const [proxyPort, proxyApiPort] = [await freeLowPort(), await freeLowPort()]
    fd = logFd('proxy')
    const proxy = spawn(process.execPath, [CLI, 'proxy', '--ip', '127.0.0.1', '--port', String(proxyPort), '--api-ip', '127.0.0.1', '--api-port', String(proxyApiPort), '--log-level', 'warn'],
      { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: secrets.CONFIGPROXY_AUTH_TOKEN }, stdio: ['ignore', fd, fd] })
    closeSync(fd)
    children.add(proxy)
    const proxyApiUrl = `http://127.0.0.1:${proxyApiPort}`
    await waitFor(async () => (await fetch(`${proxyApiUrl}/api/routes`, { headers: { authorization: `token ${secrets.CONFIGPROXY_AUTH_TOKEN}` } }).catch(() => undefined))?.status === 200, 30_000, 'the proxy')

    let generation = 0
    const startHub = async (): Promise<Hub> => {
      const name = `hub${++generation}`
      const hubPort = await freeLowPort()
      const fd = logFd(name)
      const child = spawn(process.execPath, [CLI, 'hub', '--proxy', 'external', '--proxy-api-url', proxyApiUrl, '--port', String(proxyPort), '--hub-port', String(hubPort),
        '--data-dir', path.join(dir, name), '--spawner', 'kubernetes', '--admin-users', 'admin', '--log-level', 'warn', '--no-migrate', '--start-timeout', '120'],
      { env: { ...process.env, DATABASE_URL: pg.socketUrl, KUBECONFIG: kubeconfig, ...secrets }, stdio: ['ignore', fd, fd] })
      closeSync(fd)
      children.add(child)
      const url = `http://127.0.0.1:${hubPort}`
      await waitFor(async () => child.exitCode === null && (await fetch(`${url}/hub/health`).catch(() => undefined))?.ok === true, 60_000, name)
      const hub: Hub = { name, child, url, hubId: '' }
      hub.hubId = [...(await metrics(hub, token)).keys()].map(k => /^fleethub_hub_info\{hub="([^"]+)"/.exec(k)?.[1]).find(Boolean) ?? ''
      if (!hub.hubId) throw new Error(`${name}: no fleethub_hub_info in /hub/metrics`)
      return hub
    }
    const hubs: Hub[] = [await startHub()]
    // the first hub takes every lease; the second joins
    await waitFor(async () => (await leaseHolders(db)).get('culler') === connectionName('leases', hubs[0]!.hubId), 30_000, 'the first hub holding the culler lease')
    hubs.push(await startHub())

    for (let round = 1; round <= ROUNDS; round++) {
      const holders = await leaseHolders(db)
      const victim = hubs.find(h => holders.get('culler') === connectionName('leases', h.hubId))
      if (!victim) throw new Error(`round ${round}: no live hub holds the culler lease`)
      const survivor = hubs.find(h => h !== victim)!
      const heldBefore = [...holders].filter(([, app]) => app === connectionName('leases', victim.hubId)).map(([k]) => k).sort()
      progress(`round ${round}: ${victim.name} holds ${heldBefore.join(', ')}; ${SPAWNS} spawns on it, then SIGKILL`)
      // spawns in flight, owned by the victim
      const names = Array.from({ length: SPAWNS }, (_, i) => `r${round}s${i}`)
      await db.insertInto('users').values(names.map(name => ({ name }))).execute()
      const aborts = new AbortController()
      for (const n of names) {
        void fetch(`${victim.url}/hub/api/users/${n}/server`, { method: 'POST', headers: { authorization: `token ${token}` }, signal: aborts.signal })
          .then(r => r.body?.cancel(), () => undefined)
      }
      const inFlight = async () => (await db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
        .select(['users.name', 'servers.state', 'servers.owner', 'servers.last_error', 'servers.updated']).where('users.name', 'in', names).execute())
      await waitFor(async () => { const rows = await inFlight(); return rows.length === SPAWNS && rows.every(r => r.state === 'pending') }, 30_000, `${SPAWNS} pending spawns`)
      const claimed = await inFlight()
      const owned = claimed.filter(r => r.owner === victim.hubId).map(r => r.name)
      const lastClaim = Math.max(...claimed.map(r => new Date(r.updated as unknown as string).getTime()))
      const waitMs = Math.max(0, lastClaim + KILL_AFTER_MS - Date.now())
      await new Promise(r => setTimeout(r, waitMs))

      const t0 = performance.now()
      const killedAt = Date.now()
      process.kill(victim.child.pid!, 'SIGKILL')
      const lease: Round['lease'] = Object.fromEntries(heldBefore.filter(k => k === 'culler' || k === 'routes').map(k => [k, { pgMs: null, metricMs: null }]))
      const done = new Map<string, number>()
      const survivorApp = connectionName('leases', survivor.hubId)
      let pollStepMaxMs = 0
      for (;;) {
        const elapsed = performance.now() - t0
        const [pgHolders, m, rows] = await Promise.all([leaseHolders(db), metrics(survivor, token).catch(() => new Map<string, number>()), inFlight()])
        const at = Math.round(performance.now() - t0)
        // an event is seen at most one poll step (the queries' round trip plus the sleep) after it happened
        pollStepMaxMs = Math.max(pollStepMaxMs, Math.round(at - elapsed) + POLL_MS)
        for (const [k, v] of Object.entries(lease)) {
          if (v.pgMs === null && pgHolders.get(k) === survivorApp) v.pgMs = at
          if (v.metricMs === null && m.get(`fleethub_lease_held{hub="${survivor.hubId}",lease="${k}"}`) === 1) v.metricMs = at
        }
        for (const r of rows) if (owned.includes(r.name) && r.state !== 'pending' && !done.has(r.name)) done.set(r.name, at)
        const leasesDone = Object.values(lease).every(v => v.pgMs !== null && v.metricMs !== null)
        if ((leasesDone && done.size === owned.length) || elapsed > LIMIT_MS) break
        await new Promise(r => setTimeout(r, POLL_MS))
      }
      aborts.abort()
      const final = await inFlight()
      const outcomes: Record<string, number> = {}
      for (const r of final.filter(r => owned.includes(r.name))) {
        const k = r.state === 'stopped' ? (r.last_error ? 'failed (stopped, user told)' : 'stopped without error') : r.state
        outcomes[k] = (outcomes[k] ?? 0) + 1
      }
      rounds.push({
        round, killed: victim.name, killedHubId: victim.hubId, survivor: survivor.name, heldBefore, lease, pollStepMaxMs,
        spawns: {
          owned: owned.length, requested: SPAWNS, claimAgeAtKillMs: killedAt - lastClaim,
          allDoneMs: done.size === owned.length ? Math.max(0, ...done.values()) : null, perSpawnMs: [...done.values()].sort((a, b) => a - b), outcomes,
          errors: [...new Set(final.filter(r => owned.includes(r.name) && r.last_error).map(r => r.last_error!))],
        },
      })
      const r = rounds[rounds.length - 1]!
      progress(`round ${round}: culler ${fmtLease(r.lease.culler)}, routes ${fmtLease(r.lease.routes)}; ${owned.length} owned spawns done in ${r.spawns.allDoneMs ?? '>limit'} ms (${Object.entries(outcomes).map(([k, n]) => `${k}: ${n}`).join(', ')})`)
      if (victim.child.exitCode === null && victim.child.signalCode === null) await once(victim.child, 'exit')
      children.delete(victim.child)
      hubs.splice(hubs.indexOf(victim), 1)
      // stop the round's servers before the next (through the survivor), then a fresh second hub
      await Promise.all(names.map(n => fetch(`${survivor.url}/hub/api/users/${n}/server`, { method: 'DELETE', headers: { authorization: `token ${token}` }, signal: AbortSignal.timeout(15_000) })
        .then(r => r.body?.cancel(), () => undefined)))
      if (round < ROUNDS) hubs.push(await startHub())
    }
  } finally {
    for (const c of [...children].reverse()) await stop(c)
    await db.destroy()
    await pg.stop()
    await fs.rm(dir, { recursive: true, force: true }) // the logs, with --logs, are elsewhere
  }
  await writeReport(rounds, { startedAt, loadStart })
}

const fmtLease = (l: { pgMs: number | null; metricMs: number | null } | undefined) => l ? `${l.pgMs ?? '>limit'} ms (pg_locks) / ${l.metricMs ?? '>limit'} ms (metrics)` : 'not held by the killed hub'

/** Lease name -> application_name of the session holding its advisory lock (culler, poll, prune, routes). */
async function leaseHolders(db: ReturnType<typeof createDb>['db']): Promise<Map<string, string>> {
  const { rows } = await sql<{ space: string; k: string; app: string }>`select l.classid::bigint::text as space, l.objid::bigint::text as k, a.application_name as app
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.classid in (${LOCK_SPACE}::bigint::oid, ${PROXY_LOCK_SPACE}::bigint::oid)`.execute(db)
  const out = new Map<string, string>()
  const names: Record<string, string> = { 1: 'culler', 2: 'poll', 3: 'prune' }
  for (const r of rows) {
    if (Number(r.space) === PROXY_LOCK_SPACE) out.set('routes', r.app)
    else if (names[r.k]) out.set(names[r.k]!, r.app)
  }
  return out
}

/** A hub's fleet samples from /hub/metrics: `name{labels}` -> value. */
async function metrics(hub: Hub, token: string): Promise<Map<string, number>> {
  const res = await fetch(`${hub.url}/hub/metrics`, { headers: { authorization: `token ${token}` }, signal: AbortSignal.timeout(2000) })
  if (res.status !== 200) throw new Error(`${hub.name} /hub/metrics: ${res.status}`)
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    const m = /^(fleethub_(?:lease_held|hub_info))\{([^}]*)\} (\S+)$/.exec(line)
    if (!m) continue
    // labels in a fixed order (hub, then lease), whatever order the registry printed them in
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1]!, x[2]!]))
    out.set(`${m[1]}{${['hub', 'lease'].filter(k => k in labels).map(k => `${k}="${labels[k]}"`).join(',')}}`, Number(m[3]))
  }
  return out
}

async function waitFor(check: () => Promise<boolean>, limitMs: number, what: string): Promise<void> {
  const deadline = Date.now() + limitMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise(r => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = once(child, 'exit')
  try { process.kill(child.pid, 'SIGTERM') } catch { return }
  if (await Promise.race([exited.then(() => true), new Promise<boolean>(r => setTimeout(() => r(false), 30_000).unref())])) return
  try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ }
  await Promise.race([exited, new Promise(r => setTimeout(r, 5000).unref())])
}

function stats(xs: number[]): { n: number; median: number | null; min: number | null; max: number | null } {
  if (xs.length === 0) return { n: 0, median: null, min: null, max: null }
  const s = [...xs].sort((a, b) => a - b)
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : Math.round((s[s.length / 2 - 1]! + s[s.length / 2]!) / 2)
  return { n: s.length, median, min: s[0]!, max: s[s.length - 1]! }
}

async function writeReport(rounds: Round[], t: { startedAt: string; loadStart: number[] }): Promise<void> {
  const date = new Date().toISOString().slice(0, 10)
  const out = path.join(values.out!, `${date}-failover${values.label ? `-${values.label}` : ''}`)
  await fs.mkdir(out, { recursive: true })
  const command = `npm run bench:failover -- --rounds ${ROUNDS} --spawns ${SPAWNS} --kill-after ${values['kill-after']} --start-time ${values['start-time']}${values.label ? ` --label ${values.label}` : ''}`
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version,
    loadavg_start: t.loadStart.map(l => Math.round(l * 100) / 100), loadavg_end: os.loadavg().map(l => Math.round(l * 100) / 100) }
  const leaseBoundMs = LEASE_TICK_MS
  const sweepBoundMs = 4000
  const nums = (xs: Array<number | null | undefined>) => xs.filter((x): x is number => typeof x === 'number')
  const measures = {
    culler_takeover_pg_ms: stats(nums(rounds.map(r => r.lease.culler?.pgMs))),
    culler_takeover_metric_ms: stats(nums(rounds.map(r => r.lease.culler?.metricMs))),
    routes_takeover_pg_ms: stats(nums(rounds.map(r => r.lease.routes?.pgMs))),
    routes_takeover_metric_ms: stats(nums(rounds.map(r => r.lease.routes?.metricMs))),
    inflight_spawns_all_done_ms: stats(nums(rounds.map(r => r.spawns.allDoneMs))),
  }
  const bounds = {
    lease_takeover_ms: { bound: leaseBoundMs, source: 'hub/src/fleet/leases.ts: at most one tick (1 s) after the holder\'s connection closes' },
    inflight_spawns_all_done_ms: { bound: sweepBoundMs, source: `hub/src/servers/owner-sweep.ts: ≤ 4 s after a SIGKILL (next sweep ≤ 1 s, one lease tick more when the dead hub held poll, never before GRACE_MS = ${GRACE_MS} ms after the claim); the tests hold it to 10 s` },
  }
  const missing = {
    lease_not_taken_over: rounds.filter(r => Object.values(r.lease).some(v => v.pgMs === null || v.metricMs === null)).length,
    spawns_not_done: rounds.filter(r => r.spawns.allDoneMs === null).length,
  }
  await fs.writeFile(path.join(out, 'result.json'), JSON.stringify({ date: new Date().toISOString(), startedAt: t.startedAt, command, machine,
    parameters: { rounds: ROUNDS, spawns: SPAWNS, killAfterS: Number(values['kill-after']), kubeSimStartTime: values['start-time'], pollMs: POLL_MS, limitMs: LIMIT_MS },
    measures, bounds, missing, rounds }, null, 2) + '\n')
  const step = Math.max(0, ...rounds.map(r => r.pollStepMaxMs))
  const row = (label: string, s: ReturnType<typeof stats>, bound: number) =>
    `| ${label} | ${s.n} | ${s.median ?? '-'} | ${s.min ?? '-'} | ${s.max ?? '-'} | ${bound} | ${s.max === null ? '-' : s.max <= bound ? 'yes' : s.max <= bound + step ? `yes, within one poll step (≤ ${step} ms)` : '**no**'} |`
  const md = [`# Failover of a fleet of two hubs, ${date}`, '',
    `Command: \`${command}\` (hub/bench/failover.bench.ts). Two \`node dist/cli/fleethub.js hub --proxy external --spawner kubernetes\` processes`,
    'over one embedded PostgreSQL (fsync off), one shared `fleethub proxy`, kube-sim as the cluster (container start',
    `${values['start-time']}, so spawns stay in flight). ${ROUNDS} round(s): the hub holding the culler lease gets ${SPAWNS} spawn requests on its own port,`,
    `and ${values['kill-after']} s after the last claim it is SIGKILLed; times are from the SIGKILL, polled every ${POLL_MS} ms: each time is late by at most one poll step (queries + sleep; its maximum is in the table of rounds), so a time just over a bound by less than that is within it;`,
    'a fresh hub then replaces it, so rounds alternate between the two.',
    `Machine: ${machine.cpus} cores (${machine.cpu}), ${machine.memory_gib} GiB, Node ${machine.node}; load average ${machine.loadavg_start.join(' ')} at the start, ${machine.loadavg_end.join(' ')} at the end (shared machine).`, '',
    '| measure (ms from SIGKILL) | rounds | median | min | max | stated bound | within |', '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    row('culler lease granted to the other hub (pg_locks)', measures.culler_takeover_pg_ms, leaseBoundMs),
    row('culler lease held, as the other hub\'s /hub/metrics says', measures.culler_takeover_metric_ms, leaseBoundMs),
    row('routes lease granted to the other hub (pg_locks)', measures.routes_takeover_pg_ms, leaseBoundMs),
    row('routes lease held, as the other hub\'s /hub/metrics says', measures.routes_takeover_metric_ms, leaseBoundMs),
    row('every in-flight spawn of the killed hub finished or failed', measures.inflight_spawns_all_done_ms, sweepBoundMs), '',
    `Bounds: ${bounds.lease_takeover_ms.source}; ${bounds.inflight_spawns_all_done_ms.source}.`,
    `Rounds where a lease was not taken over within ${LIMIT_MS / 1000} s: ${missing.lease_not_taken_over}; where a spawn was still pending: ${missing.spawns_not_done}.`, '',
    '## Every round', '',
    '| round | killed | leases it held | poll step max ms | culler pg / metric ms | routes pg / metric ms | spawns owned / requested | claim age at kill ms | all done ms | outcomes |',
    '| ---: | --- | --- | ---: | --- | --- | --- | ---: | ---: | --- |',
    ...rounds.map(r => `| ${r.round} | ${r.killed} | ${r.heldBefore.join(', ')} | ${r.pollStepMaxMs} | ${r.lease.culler ? `${r.lease.culler.pgMs ?? '-'} / ${r.lease.culler.metricMs ?? '-'}` : '-'} | ${r.lease.routes ? `${r.lease.routes.pgMs ?? '-'} / ${r.lease.routes.metricMs ?? '-'}` : 'not held'} | ${r.spawns.owned} / ${r.spawns.requested} | ${r.spawns.claimAgeAtKillMs} | ${r.spawns.allDoneMs ?? '-'} | ${Object.entries(r.spawns.outcomes).map(([k, n]) => `${k}: ${n}`).join(', ')} |`),
    '', ...[...new Set(rounds.flatMap(r => r.spawns.errors))].map(e => `- What the users were told: "${e}"`), '']
  await fs.writeFile(path.join(out, 'README.md'), md.join('\n'))
  process.stdout.write(md.join('\n'))
  progress(`wrote ${out}/README.md and result.json`)
}

main().catch(err => { process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`); process.exitCode = 1 })
