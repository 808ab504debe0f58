/**
 * `--target fleethub`: the whole stack run the way an operator would: an embedded Postgres (in this
 * process, so its pid is known), then `node dist/cli/fleethub.js start` as a child process (hub +
 * its proxy child + user servers), optionally under `node --cpu-prof` (hub-profile.ts), and with
 * `--spawner kube-sim` a kube-sim process and the hub's Kubernetes spawner (falling back to the
 * local spawner, and saying so, while the hub has none wired in).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { freeLowPort, startEmbeddedPostgres, type RunningPostgres } from '../../../core/src/embedded-postgres.js'
import type { Logger } from '../../../core/src/log.js'
import type { WatchedProcess } from '../resources.js'
import { alive, CLI, descendantsOf, findInTree, logTo, ownedCommand, rangeArg, stopChild, waitHttp } from './processes.js'
import { PidRegistry, type RecordedProcess } from './pid-registry.js'
import type { RestartComponent, RestartEvent, Target } from './target.js'

export interface FleethubTargetOptions {
  readonly spawner: 'local' | 'kube-sim'
  readonly activityIntervalMs: number
  readonly concurrentSpawnLimit: number
  readonly adminUser: string
  readonly profile: 'hub' | 'none'
  /** `fleethub start --workers N`: hub processes behind the one hub port (node:cluster). Default 1. */
  readonly workers?: number
  /** kube-sim's container start time, ms (uniform). Default 0. */
  readonly serverStartTime?: { readonly min: number; readonly max: number }
  /** kube-sim's node count (POD_SLOTS_PER_NODE pods each). Default MIN_NODES. */
  readonly kubeNodes?: number
  /** Where `node --cpu-prof` writes the hub's profile with --profile hub. */
  readonly profileDir?: string
  /** The hub's own culler on, with these timings (the cull scenario); default off (`--no-cull-idle`). */
  readonly cull?: { readonly timeoutMs: number; readonly everyMs: number }
  /** Where the processes' logs go. */
  readonly workDir: string
  readonly log: Logger
}

const HUB_STOP_GRACE_MS = 90_000
const CPU_PROF_INTERVAL_US = 1000 // node's default, stated: ~1,000 samples a second, idle ones included

/**
 * Stop the hub as an operator does: SIGINT, its own shutdown (hub/src/main.ts), then its exit,
 * which is when `node --cpu-prof` writes the profile. A hub still stopping after the grace period
 * gets a second SIGINT, on which main.ts exits at once (the profile is still written); SIGKILL, which
 * loses the profile, only when that fails too.
 */
async function stopHub(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = once(child, 'exit').then(() => true, () => true)
  const steps: Array<[NodeJS.Signals, number]> = [['SIGINT', HUB_STOP_GRACE_MS], ['SIGINT', 30_000], ['SIGKILL', 5000]]
  for (const [signal, ms] of steps) {
    try { process.kill(child.pid, signal) } catch { return }
    if (await Promise.race([exited, new Promise<false>(r => setTimeout(() => r(false), ms).unref())])) return
  }
}

/** The simulated cluster's shape: nodes of a real cluster's default pod limit, and never fewer than this many. */
const POD_SLOTS_PER_NODE = 110
const MIN_NODES = 10

/**
 * A simulated cluster big enough for the whole run: a ramp carries over the servers its abandoning
 * and silent users leave running, so at worst every user of every step holds a pod at once; 25%
 * headroom. A cluster that runs out is a finding about the cluster's size, not about the hub (round
 * 1 of the journal nearly read it as the hub's).
 */
export function clusterNodesFor(steps: readonly number[]): number {
  const users = steps.reduce((a, b) => a + b, 0)
  return Math.max(MIN_NODES, Math.ceil(users * 1.25 / POD_SLOTS_PER_NODE))
}

async function startKubeSim(workDir: string, startTime: { min: number; max: number } | undefined, nodes: number, pids: PidRegistry): Promise<{ child: ChildProcess; kubeconfig: string }> {
  const kubeconfig = path.join(workDir, 'kubeconfig.json')
  const fd = logTo(path.join(workDir, 'kube-sim.log'))
  const cmd = await ownedCommand(process.execPath, [CLI, 'kube-sim', '--write-kubeconfig', kubeconfig, '--runtime', 'singleuser', '--pod-hosts', 'auto', '--log-level', 'warn', '--start-time', rangeArg(startTime), '--nodes', String(nodes), '--node-pods', String(POD_SLOTS_PER_NODE)], 'SIGTERM')
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', fd, fd], detached: cmd.detached })
  pids.record('kube-sim', child.pid)
  fs.closeSync(fd)
  const deadline = Date.now() + 30_000
  while (!fs.existsSync(kubeconfig) && Date.now() < deadline && child.exitCode === null) await new Promise(r => setTimeout(r, 100))
  if (!fs.existsSync(kubeconfig)) { await stopChild(child, 'SIGTERM'); throw new Error('kube-sim did not start (see kube-sim.log)') }
  return { child, kubeconfig }
}

export async function startFleethubTarget(o: FleethubTargetOptions): Promise<Target> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'fleethub-loadtest-'))
  await fsp.chmod(dir, 0o755) // the embedded Postgres runs as another OS user and must enter it
  let pgServer: RunningPostgres | undefined
  let kube: { child: ChildProcess; kubeconfig: string } | undefined
  let hub: ChildProcess | undefined
  const pids = new PidRegistry()
  // the hub's tree changes (the proxy restarted, user servers come and go): note it every 2 s
  const noteTree = () => { pids.recordTree('hub', hub?.pid); pids.record('kube-sim', kube?.child.pid); pids.record('postgres', pgServer?.pid) }
  const watch = setInterval(noteTree, 2000).unref()
  let leftovers: RecordedProcess[] = []
  const cleanup = async () => {
    clearInterval(watch)
    // a hub that had to be killed leaves its proxy and user servers: note its descendants first,
    // and stop those still running afterwards
    noteTree()
    const children = descendantsOf(hub?.pid)
    await stopHub(hub)
    for (const pid of children) if (alive(pid)) { try { process.kill(pid, 'SIGTERM') } catch { /* gone */ } }
    await stopChild(kube?.child, 'SIGTERM')
    await pgServer?.stop()
    // whatever outlived its orderly stop (a proxy orphaned by a killed hub, a hung server): by pid
    leftovers = await pids.stopAll()
    await fsp.rm(dir, { recursive: true, force: true })
  }
  // absolute: the hub runs with the work dir as its cwd, and a relative --out (the default,
  // bench-results) would put the profile inside the work dir, which is deleted at the end
  const profileDirOf = () => o.profile === 'hub' ? path.resolve(o.profileDir ?? path.join(o.workDir, 'profile-hub')) : undefined
  const hubPid = () => hub?.pid
  try {
    const pgOptions = { dataDir: path.join(dir, 'pgdata'), log: o.log.child({ component: 'postgres' }), settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '400' } }
    pgServer = await startEmbeddedPostgres(pgOptions)
    pids.record('postgres', pgServer.pid)
    const password = randomBytes(12).toString('hex')
    const proxyAuthToken = randomBytes(24).toString('hex')
    const [port, hubPort, apiPort] = [await freeLowPort(), await freeLowPort(), await freeLowPort()]
    const configFile = path.join(dir, 'hub-config.json')
    await fsp.writeFile(configFile, JSON.stringify({ environment: { JUPYTERHUB_ACTIVITY_INTERVAL: String(o.activityIntervalMs / 1000) } }))
    const workers = o.workers ?? 1
    const description: Record<string, unknown> = { kind: 'fleethub', workers, spawner: o.spawner, simulatedCluster: false, userServers: 'fleethub singleuser (built-in), one process each', postgres: 'embedded (fsync off)' }
    if (workers > 1) description.workersNote = `fleethub start --workers ${workers}: "hub" in the process table is the cluster primary (it accepts and hands out the hub port's connections), "hub-workers" the ${workers} workers (with the local spawner, their user servers too)`
    const env = { ...process.env, DATABASE_URL: pgServer.socketUrl, FLEETHUB_DEV_PASSWORD: password, CONFIGPROXY_AUTH_TOKEN: proxyAuthToken }
    const baseArgs = ['start', '--port', String(port), '--hub-port', String(hubPort), '--proxy-api-url', `http://127.0.0.1:${apiPort}`,
      '--data-dir', path.join(dir, 'data'), '--config', configFile, '--log-level', 'warn', '--admin-users', o.adminUser,
      '--concurrent-spawn-limit', String(o.concurrentSpawnLimit), '--start-timeout', '120',
      // the cull scenario turns the hub's own culler on; every other run measures without it
      ...(o.cull ? ['--cull-timeout', String(Math.round(o.cull.timeoutMs / 1000)), '--cull-every', String(Math.round(o.cull.everyMs / 1000))] : ['--no-cull-idle']),
      // always explicit, so an inherited FLEETHUB_WORKERS cannot change the run behind the report's back
      '--workers', String(workers),
      // the built-in single-user server (its websocket echoes): a real jupyterhub-singleuser on PATH would need kernels
      '--singleuser-cmd', `${process.execPath} ${CLI} singleuser`]
    const profileDir = profileDirOf()
    if (profileDir) description.profile = `hub: node --cpu-prof, a sample every ${CPU_PROF_INTERVAL_US / 1000} ms`
    let lastLaunch: [string[], Record<string, string>] = [[], {}]
    const launch = async (extra: string[], extraEnv: Record<string, string>) => {
      lastLaunch = [extra, extraEnv]
      const fd = logTo(path.join(o.workDir, 'hub.log'))
      // the profile is written when the hub exits (stopHub); only this process profiles, not its
      // proxy and user servers (the flags are not in NODE_OPTIONS, so children do not inherit them)
      const argv = profileDir
        ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', String(CPU_PROF_INTERVAL_US), CLI, ...baseArgs, ...extra]
        : [CLI, ...baseArgs, ...extra]
      // its open-file limit raised, which its proxy and user servers inherit (fd-limits.ts); SIGINT,
      // its orderly stop, if the generator dies first
      const cmd = await ownedCommand(process.execPath, argv, 'SIGINT')
      const child = spawn(cmd.file, cmd.args, { env: { ...env, ...extraEnv }, stdio: ['ignore', fd, fd], cwd: o.workDir, detached: cmd.detached })
      pids.record('hub', child.pid)
      fs.closeSync(fd)
      return child
    }
    if (o.spawner === 'kube-sim') {
      const nodes = o.kubeNodes ?? MIN_NODES
      kube = await startKubeSim(o.workDir, o.serverStartTime, nodes, pids)
      hub = await launch(['--spawner', 'kubernetes'], { KUBECONFIG: kube.kubeconfig })
      try {
        await waitHttp(`http://127.0.0.1:${hubPort}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
        description.simulatedCluster = true
        description.userServers = 'virtual servers in kube-sim\'s pod-host child processes (pods), each on its own loopback address'
        description.serverStartTime = rangeArg(o.serverStartTime)
        description.cluster = `${nodes} simulated nodes x ${POD_SLOTS_PER_NODE} pods (${nodes * POD_SLOTS_PER_NODE} pods)`
      } catch (err) {
        o.log.warn({ err: (err as Error).message.split('\n')[0] }, 'the hub did not start with the Kubernetes spawner: falling back to local')
        await stopChild(hub, 'SIGKILL'); await stopChild(kube.child, 'SIGTERM'); kube = undefined
        description.spawner = 'local'
        description.fallback = 'kube-sim requested, but the hub did not start with --spawner kubernetes (hub/src/kubernetes-spawner.ts not wired in yet): ran the local spawner'
        hub = undefined
      }
    }
    if (!hub || hub.exitCode !== null) {
      hub = await launch(['--spawner', 'local'], {})
      await waitHttp(`http://127.0.0.1:${hubPort}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
    }
    const publicUrl = `http://127.0.0.1:${port}`
    await waitHttp(`${publicUrl}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
    const pool = new pg.Pool({ connectionString: pgServer.url, max: 1 })
    // a restarted Postgres ends the pool's connection: an idle client's error is emitted here, not thrown
    pool.on('error', () => undefined)
    const isProxy = (c: string) => c.includes('proxy/src/main.js')
    const proxyPid = () => findInTree(hubPid(), isProxy)
    const processes: WatchedProcess[] = [
      { name: 'hub', pid: hubPid },
      // with --proxies N (FLEETHUB_PROXIES), the proxy's workers: summed, each with its own open-file limit
      { name: 'proxy', pid: proxyPid, tree: true },
      { name: 'postgres', pid: () => pgServer?.pid, tree: true },
      // the hub's descendants but the proxy: the local spawner's user servers (and, with --workers N,
      // the workers: cluster.fork()ed children of the primary)
      { name: workers > 1 ? 'hub-workers' : 'user-servers', pid: hubPid, tree: true, descendantsOnly: true, exclude: () => [proxyPid()] },
      ...(kube ? [{ name: 'kube-sim', pid: () => kube?.child.pid, tree: true }] : []),
      { name: 'generator', pid: () => process.pid },
    ]
    const pgUrl = pgServer.url
    noteTree()
    /** The restart scenario's outages: SIGKILL the hub or the proxy, Postgres an immediate shutdown; then up again. */
    const restart = async (component: RestartComponent): Promise<RestartEvent> => {
      if (component === 'proxy') {
        const killedPid = proxyPid()
        const before = await routeCount(proxyApiUrl, proxyAuthToken)
        const killedAt = performance.now()
        if (killedPid !== undefined) process.kill(killedPid, 'SIGKILL')
        // the hub starts it again (hub/src/proxy/proxy-process.ts) and restores the routes
        await waitFor(async () => proxyPid() !== undefined && proxyPid() !== killedPid && await routeCount(proxyApiUrl, proxyAuthToken) >= before, 120_000, 'the proxy did not come back with its routes')
        pids.recordTree('hub', hubPid())
        return { component, killedPid, how: 'SIGKILL; the hub restarts its proxy', killedAt, upAt: performance.now() }
      }
      if (component === 'hub') {
        const old = hub!, killedPid = old.pid, oldProxy = proxyPid()
        const exited = once(old, 'exit')
        const killedAt = performance.now()
        process.kill(killedPid!, 'SIGKILL')
        await exited
        // its proxy gets SIGTERM from the kernel as the hub dies (setpriv --pdeathsig): wait for the port to free
        await waitFor(async () => oldProxy === undefined || !alive(oldProxy), 30_000, `the dead hub's proxy (pid ${oldProxy}) did not exit`)
        hub = await launch(...lastLaunch)
        await waitHttp(`http://127.0.0.1:${hubPort}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
        await waitHttp(`${publicUrl}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
        noteTree()
        return { component, killedPid, how: 'SIGKILL, then `fleethub start` again with the same ports and database', killedAt, upAt: performance.now() }
      }
      const old = pgServer!
      const killedAt = performance.now()
      // immediate shutdown: no checkpoint, every connection cut, crash recovery at the next start
      process.kill(old.pid, 'SIGQUIT')
      await waitFor(async () => !alive(old.pid), 30_000, `Postgres (pid ${old.pid}) did not stop`)
      pgServer = await startEmbeddedPostgres({ ...pgOptions, port: old.port })
      pids.record('postgres', pgServer.pid)
      return { component, killedPid: old.pid, how: 'SIGQUIT (immediate shutdown, crash recovery at start), then started again on the same port', killedAt, upAt: performance.now() }
    }
    const proxyApiUrl = `http://127.0.0.1:${apiPort}`
    return {
      publicUrl, hubUrl: `http://127.0.0.1:${hubPort}`, proxyApiUrl: `http://127.0.0.1:${apiPort}`, proxyAuthToken, password, hubPort, publicPort: port,
      databaseUrl: pgUrl, processes, description, profileDir,
      pgConnections: async () => Number((await pool.query<{ n: string }>('select count(*) as n from pg_stat_activity where backend_type = $1', ['client backend'])).rows[0]!.n),
      adminToken: name => mintToken(name, pgUrl),
      pids: () => pids.list(), leftovers: () => leftovers, killAllNow: () => pids.killAllNow(), restart,
      async close() { await pool.end().catch(() => undefined); await cleanup() },
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

async function routeCount(apiUrl: string, token: string): Promise<number> {
  try {
    const res = await fetch(`${apiUrl}/api/routes`, { headers: { authorization: `token ${token}` }, signal: AbortSignal.timeout(5000) })
    if (res.status !== 200) { await res.body?.cancel(); return -1 }
    return Object.keys(await res.json() as Record<string, unknown>).filter(k => k.startsWith('/user/')).length
  } catch { return -1 }
}

/** Poll `ok` every 100 ms until it holds; throw `what` after `timeoutMs`. */
async function waitFor(ok: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await ok()) return
    await new Promise(r => setTimeout(r, 100))
  }
  throw new Error(what)
}

/** `fleethub token <name>` against the run's database: the same path an operator uses. */
async function mintToken(name: string, databaseUrl: string): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'token', name], { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = '', err = ''
  child.stdout!.on('data', d => { out += String(d) })
  child.stderr!.on('data', d => { err += String(d) })
  const [code] = await once(child, 'exit') as [number]
  if (code !== 0) throw new Error(`fleethub token ${name} failed (${code}): ${err.trim()}`)
  return out.trim()
}
