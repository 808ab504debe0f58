/**
 * The system under test. `startFleethubTarget` runs the whole stack the way an operator would:
 * an embedded Postgres (in this process, so its pid is known), then `node dist/cli/fleethub.js
 * start` as a child process (hub + its proxy child + user servers), optionally under `node
 * --cpu-prof` (hub-profile.ts), and
 * with `--spawner kube-sim` a kube-sim process and the hub's Kubernetes spawner (falling back to
 * the local spawner, and saying so, while the hub has none wired in). `externalTarget` is a hub
 * someone else runs: only HTTP, no pids.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { freeLowPort, startEmbeddedPostgres, type RunningPostgres } from '../../hub/src/embedded-postgres.js'
import type { Logger } from '../../hub/src/log.js'
import type { WatchedProcess } from './resources.js'

export interface Target {
  /** The public URL (through the proxy). */
  readonly publicUrl: string
  /** The hub's own URL (for direct timing and the api scenario); undefined for an external hub. */
  readonly hubUrl: string | undefined
  readonly proxyApiUrl: string | undefined
  readonly proxyAuthToken: string | undefined
  /** The hub's listening port on this machine (its accept queue is sampled: accept-queue.ts); undefined for an external hub. */
  readonly hubPort: number | undefined
  /** The proxy's public listening port on this machine; undefined for an external hub. */
  readonly publicPort: number | undefined
  readonly password: string
  /** The run's Postgres (fleethub's; JupyterHub's with --jupyterhub-db postgres), for tests that look inside. */
  readonly databaseUrl: string | undefined
  readonly processes: readonly WatchedProcess[]
  readonly pgConnections: (() => Promise<number>) | undefined
  /** What ran, for the report: spawner, simulated cluster, fallbacks. */
  readonly description: Readonly<Record<string, unknown>>
  /** Mint an API token (admin) for the api scenarios; fleethub targets only. */
  adminToken(name: string): Promise<string>
  /** Where the hub's CPU profile is, after close (`--profile hub` only; see hub-profile.ts). */
  readonly profileDir: string | undefined
  /** JupyterHub targets: sim-servers' control API (tests read its counters). */
  readonly simServers?: { readonly url: string; readonly token: string }
  /** JupyterHub targets: the `loadtest` service's admin API token (tests read the hub's REST API). */
  readonly serviceToken?: string
  close(): Promise<void>
}

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
  /** Where the processes' logs go. */
  readonly workDir: string
  readonly log: Logger
}

/** The repository root, whether this file runs from loadtest/src (tests) or dist/loadtest/src. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir)
  return dir
}
export const REPO = repoRoot()
const CLI = path.join(REPO, 'dist/cli/fleethub.js')
const READY_TIMEOUT_MS = 60_000

/** Every descendant pid of `root` (not root itself). */
function descendantsOf(root: number | undefined): number[] {
  const out: number[] = []
  const stack = root === undefined ? [] : [root]
  for (let guard = 0; stack.length > 0 && guard < 100_000; guard++) {
    const pid = stack.pop()!
    if (pid !== root) out.push(pid)
    try {
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        const kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()
        if (kids) stack.push(...kids.split(' ').map(Number))
      }
    } catch { /* exited */ }
  }
  return out
}

/** The pid of the first process in `root`'s tree whose command line matches. */
export function findInTree(root: number | undefined, match: (cmdline: string) => boolean): number | undefined {
  if (root === undefined) return undefined
  const stack = [root]
  for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
    const pid = stack.pop()!
    let cmd = ''
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') } catch { continue }
    if (match(cmd)) return pid
    try {
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        const kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()
        if (kids) stack.push(...kids.split(' ').map(Number))
      }
    } catch { /* exited */ }
  }
  return undefined
}

async function waitHttp(url: string, child: ChildProcess, logFile: string, ok = (status: number) => status < 500): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.body?.cancel()
      if (ok(res.status)) return
    } catch { /* not yet */ }
    await new Promise(r => setTimeout(r, 200))
  }
  const tail = (await fsp.readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n')
  throw new Error(`${url} did not come up (${child.exitCode !== null ? `exit ${child.exitCode}` : 'timeout'}):\n${tail}`)
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals, pid = child?.pid, timeoutMs = 90_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  pid ??= child.pid
  if (pid === undefined) return
  const exited = once(child, 'exit')
  try { process.kill(pid, signal) } catch { return }
  const timer = new Promise(r => setTimeout(r, timeoutMs).unref())
  if (await Promise.race([exited.then(() => true), timer.then(() => false)])) return
  try { child.kill('SIGKILL') } catch { /* gone */ }
  await Promise.race([exited, new Promise(r => setTimeout(r, 5000).unref())])
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

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

function logTo(file: string): number {
  return fs.openSync(file, 'a')
}

const rangeArg = (r: { min: number; max: number } | undefined) => r ? `${r.min}ms-${r.max}ms` : '0'

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

async function startKubeSim(workDir: string, startTime: { min: number; max: number } | undefined, nodes: number): Promise<{ child: ChildProcess; kubeconfig: string }> {
  const kubeconfig = path.join(workDir, 'kubeconfig.json')
  const fd = logTo(path.join(workDir, 'kube-sim.log'))
  const child = spawn(process.execPath, [CLI, 'kube-sim', '--write-kubeconfig', kubeconfig, '--runtime', 'singleuser', '--log-level', 'warn', '--start-time', rangeArg(startTime), '--nodes', String(nodes), '--node-pods', String(POD_SLOTS_PER_NODE)], { stdio: ['ignore', fd, fd] })
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
  const cleanup = async () => {
    // a hub that had to be killed leaves its proxy and user servers: note its descendants first,
    // and stop those still running afterwards
    const leftovers = descendantsOf(hub?.pid)
    await stopHub(hub)
    for (const pid of leftovers) if (alive(pid)) { try { process.kill(pid, 'SIGTERM') } catch { /* gone */ } }
    await stopChild(kube?.child, 'SIGTERM')
    await pgServer?.stop()
    await fsp.rm(dir, { recursive: true, force: true })
  }
  // absolute: the hub runs with the work dir as its cwd, and a relative --out (the default,
  // bench-results) would put the profile inside the work dir, which is deleted at the end
  const profileDirOf = () => o.profile === 'hub' ? path.resolve(o.profileDir ?? path.join(o.workDir, 'profile-hub')) : undefined
  const hubPid = () => hub?.pid
  try {
    pgServer = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: o.log.child({ component: 'postgres' }), settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '400' } })
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
      '--concurrent-spawn-limit', String(o.concurrentSpawnLimit), '--no-cull-idle', '--start-timeout', '120',
      // always explicit, so an inherited FLEETHUB_WORKERS cannot change the run behind the report's back
      '--workers', String(workers),
      // the built-in single-user server (its websocket echoes): a real jupyterhub-singleuser on PATH would need kernels
      '--singleuser-cmd', `${process.execPath} ${CLI} singleuser`]
    const profileDir = profileDirOf()
    if (profileDir) description.profile = `hub: node --cpu-prof, a sample every ${CPU_PROF_INTERVAL_US / 1000} ms`
    const launch = (extra: string[], extraEnv: Record<string, string>) => {
      const fd = logTo(path.join(o.workDir, 'hub.log'))
      // the profile is written when the hub exits (stopHub); only this process profiles, not its
      // proxy and user servers (the flags are not in NODE_OPTIONS, so children do not inherit them)
      const argv = profileDir
        ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', String(CPU_PROF_INTERVAL_US), CLI, ...baseArgs, ...extra]
        : [CLI, ...baseArgs, ...extra]
      const child = spawn(process.execPath, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', fd, fd], cwd: o.workDir })
      fs.closeSync(fd)
      return child
    }
    if (o.spawner === 'kube-sim') {
      const nodes = o.kubeNodes ?? MIN_NODES
      kube = await startKubeSim(o.workDir, o.serverStartTime, nodes)
      hub = launch(['--spawner', 'kubernetes'], { KUBECONFIG: kube.kubeconfig })
      try {
        await waitHttp(`http://127.0.0.1:${hubPort}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
        description.simulatedCluster = true
        description.userServers = 'virtual servers inside the kube-sim process (pods), each on its own loopback address'
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
      hub = launch(['--spawner', 'local'], {})
      await waitHttp(`http://127.0.0.1:${hubPort}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
    }
    const publicUrl = `http://127.0.0.1:${port}`
    await waitHttp(`${publicUrl}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
    const pool = new pg.Pool({ connectionString: pgServer.url, max: 1 })
    const isProxy = (c: string) => c.includes('proxy/src/main.js')
    const proxyPid = () => findInTree(hubPid(), isProxy)
    const processes: WatchedProcess[] = [
      { name: 'hub', pid: hubPid },
      { name: 'proxy', pid: proxyPid },
      { name: 'postgres', pid: () => pgServer?.pid, tree: true },
      // the hub's descendants but the proxy: the local spawner's user servers (and, with --workers N,
      // the workers: cluster.fork()ed children of the primary)
      { name: workers > 1 ? 'hub-workers' : 'user-servers', pid: hubPid, tree: true, descendantsOnly: true, exclude: () => [proxyPid()] },
      ...(kube ? [{ name: 'kube-sim', pid: () => kube?.child.pid, tree: true }] : []),
      { name: 'generator', pid: () => process.pid },
    ]
    const pgUrl = pgServer.url
    return {
      publicUrl, hubUrl: `http://127.0.0.1:${hubPort}`, proxyApiUrl: `http://127.0.0.1:${apiPort}`, proxyAuthToken, password, hubPort, publicPort: port,
      databaseUrl: pgUrl, processes, description, profileDir,
      pgConnections: async () => Number((await pool.query<{ n: string }>('select count(*) as n from pg_stat_activity where backend_type = $1', ['client backend'])).rows[0]!.n),
      adminToken: name => mintToken(name, pgUrl),
      async close() { await pool.end().catch(() => undefined); await cleanup() },
    }
  } catch (err) {
    await cleanup()
    throw err
  }
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

export function externalTarget(publicUrl: string, password: string): Target {
  return {
    publicUrl: publicUrl.replace(/\/+$/, ''), hubUrl: undefined, proxyApiUrl: undefined, proxyAuthToken: undefined, password, hubPort: undefined, publicPort: undefined,
    databaseUrl: undefined, pgConnections: undefined, profileDir: undefined,
    processes: [{ name: 'generator', pid: () => process.pid }],
    description: { kind: 'external', url: publicUrl, simulatedCluster: 'unknown' },
    adminToken: async () => { throw new Error('the api scenarios need --target fleethub (or an API token; not supported yet)') },
    async close() { /* not ours */ },
  }
}

export interface JupyterhubTargetOptions {
  readonly activityIntervalMs: number
  readonly concurrentSpawnLimit: number
  readonly adminUser: string
  /** sim-servers' start time per server, ms (uniform): the same as kube-sim's for fleethub. */
  readonly serverStartTime?: { readonly min: number; readonly max: number }
  /** `sqlite` (JupyterHub's default, the default here) or `postgres`: an embedded Postgres of its own, set up as fleethub's. */
  readonly database?: 'sqlite' | 'postgres'
  /** Where the processes' logs go. */
  readonly workDir: string
  readonly log: Logger
}

const JUPYTERHUB_CONFIG = path.join(REPO, 'loadtest/jupyterhub/jupyterhub_config.py')
const CHP = path.join(REPO, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy')

/** The `jupyterhub` executable on PATH, or undefined (then `--target jupyterhub` cannot run here). */
export function findJupyterhub(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue
    const file = path.join(dir, 'jupyterhub')
    try { fs.accessSync(file, fs.constants.X_OK); return file } catch { /* next */ }
  }
  return undefined
}

export class TargetUnavailable extends Error {
  readonly code = 'LOADTEST_TARGET_UNAVAILABLE'
}

/** Why `--target jupyterhub` cannot run here, or undefined when it can. */
export function jupyterhubUnavailable(): string | undefined {
  if (!findJupyterhub()) return 'jupyterhub is not installed (no `jupyterhub` on PATH; on Debian: apt-get install jupyterhub)'
  if (!fs.existsSync(CHP)) return `configurable-http-proxy 5.3 is missing (${path.relative(REPO, CHP)}): run npm ci`
  if (!fs.existsSync(CLI)) return `${CLI} is missing: run \`npm run build\` first`
  return undefined
}

/** JupyterHub's own Python (its script's #! line; not whichever python3 is first on PATH) can reach Postgres (Debian: python3-psycopg2). */
export function psycopg2Available(): boolean {
  const jupyterhub = findJupyterhub()
  if (!jupyterhub) return false
  const python = /^#!\s*(\S+)/.exec(fs.readFileSync(jupyterhub, 'utf8').slice(0, 200))?.[1] ?? 'python3'
  return spawnSync(python, ['-c', 'import psycopg2'], { stdio: 'ignore', timeout: 20_000 }).status === 0
}

async function childOutput(cmd: string, args: string[]): Promise<string> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', d => { out += String(d) })
  child.stderr!.on('data', d => { out += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  await once(child, 'exit')
  clearTimeout(timer)
  return out.trim()
}

/**
 * JupyterHub 3.0 (Debian's, Python) with configurable-http-proxy 5.3 from node_modules, its
 * spawner asking a sim-servers process for virtual servers (loadtest/jupyterhub/jupyterhub_config.py),
 * sqlite in a temporary directory or (`database: 'postgres'`) an embedded Postgres with the same
 * settings as fleethub's. Processes sampled: hub (jupyterhub), proxy (its CHP child), sim-servers,
 * postgres (when used), generator. The admin API token is minted through the REST API with the config's
 * `loadtest` service token (admin role).
 */
export async function startJupyterhubTarget(o: JupyterhubTargetOptions): Promise<Target> {
  const missing = jupyterhubUnavailable()
  if (missing) throw new TargetUnavailable(`--target jupyterhub: ${missing}`)
  const jupyterhub = findJupyterhub()!
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'fleethub-loadtest-jh-'))
  let sim: ChildProcess | undefined
  let hub: ChildProcess | undefined
  let chpPid: number | undefined
  let pgServer: RunningPostgres | undefined
  const isChp = (c: string) => c.includes('configurable-http-proxy')
  const cleanup = async () => {
    chpPid ??= findInTree(hub?.pid, isChp)
    // JupyterHub stops its proxy on SIGTERM (cleanup_proxy); the servers go with sim-servers
    await stopChild(hub, 'SIGTERM', hub?.pid, 60_000)
    if (chpPid !== undefined && alive(chpPid)) { try { process.kill(chpPid, 'SIGTERM') } catch { /* gone */ } }
    await stopChild(sim, 'SIGTERM', sim?.pid, 30_000)
    await pgServer?.stop()
    await fsp.rm(dir, { recursive: true, force: true })
  }
  try {
    const password = randomBytes(12).toString('hex')
    const simToken = randomBytes(24).toString('hex')
    const serviceToken = randomBytes(24).toString('hex')
    const proxyAuthToken = randomBytes(24).toString('hex')
    const [simPort, port, hubPort, apiPort] = [await freeLowPort(), await freeLowPort(), await freeLowPort(), await freeLowPort()]
    const simUrl = `http://127.0.0.1:${simPort}`
    const simLog = path.join(o.workDir, 'sim-servers.log')
    let fd = logTo(simLog)
    sim = spawn(process.execPath, [CLI, 'loadtest', 'sim-servers', '--port', String(simPort), '--start-time', rangeArg(o.serverStartTime), '--log-level', 'warn'],
      { env: { ...process.env, SIM_SERVERS_TOKEN: simToken }, stdio: ['ignore', fd, fd] })
    fs.closeSync(fd)
    await waitHttp(`${simUrl}/health`, sim, simLog, s => s === 200)
    // the same Postgres as fleethub's (embedded, fsync off, unix socket), owned by JupyterHub alone
    if (o.database === 'postgres') {
      await fsp.chmod(dir, 0o755) // the embedded Postgres runs as another OS user and must enter it
      if (!psycopg2Available()) throw new TargetUnavailable('--jupyterhub-db postgres: python3-psycopg2 is not installed (apt-get install python3-psycopg2)')
      pgServer = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: o.log.child({ component: 'postgres' }), settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '400' } })
    }
    const hubLog = path.join(o.workDir, 'jupyterhub.log')
    fd = logTo(hubLog)
    const env = {
      ...process.env, CONFIGPROXY_AUTH_TOKEN: proxyAuthToken,
      LOADTEST_JH_WORK_DIR: dir, LOADTEST_JH_SIM_SERVERS_URL: simUrl, LOADTEST_JH_SIM_SERVERS_TOKEN: simToken,
      LOADTEST_JH_PASSWORD: password, LOADTEST_JH_SERVICE_TOKEN: serviceToken, LOADTEST_JH_ADMIN_USER: o.adminUser,
      LOADTEST_JH_PUBLIC_PORT: String(port), LOADTEST_JH_HUB_PORT: String(hubPort), LOADTEST_JH_PROXY_API_PORT: String(apiPort),
      LOADTEST_JH_NODE: process.execPath, LOADTEST_JH_CHP: CHP,
      LOADTEST_JH_ACTIVITY_INTERVAL: String(o.activityIntervalMs / 1000), LOADTEST_JH_CONCURRENT_SPAWN_LIMIT: String(o.concurrentSpawnLimit),
      ...(pgServer ? { LOADTEST_JH_DB_URL: pgServer.socketUrl.replace(/^postgres(ql)?:/, 'postgresql:') } : {}),
    }
    // cwd: the temporary directory (JupyterHub writes its pid files and sqlite there too)
    hub = spawn(jupyterhub, ['-f', JUPYTERHUB_CONFIG], { env, cwd: dir, stdio: ['ignore', fd, fd] })
    fs.closeSync(fd)
    const hubUrl = `http://127.0.0.1:${hubPort}`
    const publicUrl = `http://127.0.0.1:${port}`
    await waitHttp(`${hubUrl}/hub/health`, hub, hubLog, s => s === 200)
    // through CHP: 200 once the hub has added its default route
    await waitHttp(`${publicUrl}/hub/health`, hub, hubLog, s => s === 200)
    chpPid = findInTree(hub.pid, isChp)
    const version = (await childOutput(jupyterhub, ['--version'])).split('\n').pop() ?? 'unknown'
    const chpVersion = (JSON.parse(fs.readFileSync(path.join(path.dirname(CHP), '../package.json'), 'utf8')) as { version: string }).version
    const description: Record<string, unknown> = {
      kind: 'jupyterhub', jupyterhub: version, proxy: `configurable-http-proxy ${chpVersion} (node_modules)`,
      spawner: 'SimServersSpawner (loadtest/jupyterhub/jupyterhub_config.py) asking sim-servers', simulatedCluster: false,
      userServers: 'virtual servers inside the sim-servers process, each on its own loopback address (the same code as kube-sim pods)',
      serverStartTime: rangeArg(o.serverStartTime),
      database: pgServer ? 'postgres: embedded (fsync off), its own, as fleethub\'s (unix socket, psycopg2)' : 'sqlite (JupyterHub default) in a temporary directory',
      authenticator: 'DummyAuthenticator with a password',
      differences: 'login form without _xsrf (JupyterHub 3.0 has none); cookie API calls authorised by the same-origin Referer (both hubs); 429 Retry-After 30-60 s (JupyterHub default spawn_throttle_retry_range); poll() answered from one server list per 10 s (as a KubeSpawner reflector)',
    }
    const processes: WatchedProcess[] = [
      { name: 'hub', pid: () => hub?.pid },
      { name: 'proxy', pid: () => chpPid },
      { name: 'sim-servers', pid: () => sim?.pid },
      ...(pgServer ? [{ name: 'postgres', pid: () => pgServer?.pid, tree: true }] : []),
      { name: 'generator', pid: () => process.pid },
    ]
    const api = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${hubUrl}/hub/api${p}`, {
        method, headers: { authorization: `token ${serviceToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(30_000),
      })
      return { status: res.status, text: await res.text() }
    }
    return {
      publicUrl, hubUrl, proxyApiUrl: `http://127.0.0.1:${apiPort}`, proxyAuthToken, password, hubPort, publicPort: port,
      databaseUrl: pgServer?.url, pgConnections: undefined, processes, description, profileDir: undefined,
      /** A user token for `name`, made an admin first (as `fleethub token` for the configured admin). */
      async adminToken(name) {
        const e = encodeURIComponent(name)
        const created = await api('POST', `/users/${e}`)
        if (created.status !== 201 && created.status !== 409) throw new Error(`POST /hub/api/users/${name}: ${created.status} ${created.text.slice(0, 200)}`)
        const admin = await api('PATCH', `/users/${e}`, { admin: true })
        if (admin.status !== 200) throw new Error(`PATCH /hub/api/users/${name}: ${admin.status} ${admin.text.slice(0, 200)}`)
        const token = await api('POST', `/users/${e}/tokens`, { note: 'loadtest' })
        if (token.status !== 201) throw new Error(`POST /hub/api/users/${name}/tokens: ${token.status} ${token.text.slice(0, 200)}`)
        return (JSON.parse(token.text) as { token: string }).token
      },
      async close() { await cleanup() },
      simServers: { url: simUrl, token: simToken },
      serviceToken,
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}
