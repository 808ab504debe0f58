/**
 * The system under test. `startFleethubTarget` runs the whole stack the way an operator would:
 * an embedded Postgres (in this process, so its pid is known), then `node dist/cli/fleethub.js
 * start` as a child process (hub + its proxy child + user servers), optionally under 0x, and
 * with `--spawner kube-sim` a kube-sim process and the hub's Kubernetes spawner (falling back to
 * the local spawner, and saying so, while the hub has none wired in). `externalTarget` is a hub
 * someone else runs: only HTTP, no pids.
 */
import { spawn, type ChildProcess } from 'node:child_process'
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
  readonly password: string
  readonly databaseUrl: string | undefined
  readonly processes: readonly WatchedProcess[]
  readonly pgConnections: (() => Promise<number>) | undefined
  /** What ran, for the report: spawner, simulated cluster, fallbacks. */
  readonly description: Readonly<Record<string, unknown>>
  /** Mint an API token (admin) for the api scenarios; fleethub targets only. */
  adminToken(name: string): Promise<string>
  /** Where the flamegraph went, after close (profile only). */
  readonly profileDir: string | undefined
  close(): Promise<void>
}

export interface FleethubTargetOptions {
  readonly spawner: 'local' | 'kube-sim'
  readonly activityIntervalMs: number
  readonly concurrentSpawnLimit: number
  readonly adminUser: string
  readonly profile: 'hub' | 'none'
  /** 0x's output folder with --profile hub. */
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
const REPO = repoRoot()
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

async function waitHttp(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.body?.cancel()
      if (res.status < 500) return
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

/**
 * Under 0x: SIGINT the profiled node child (shared/DEPENDENCIES.md §7: never 0x itself), wait for
 * it to exit and for 0x to write flamegraph.html, then stop 0x, which can linger afterwards.
 */
async function stopProfiled(zeroX: ChildProcess | undefined, pid: number | undefined, dir: string | undefined): Promise<void> {
  if (!zeroX || zeroX.exitCode !== null || zeroX.signalCode !== null) return
  if (pid !== undefined) {
    try { process.kill(pid, 'SIGINT') } catch { /* gone */ }
    for (let i = 0; i < 900 && alive(pid); i++) await new Promise(r => setTimeout(r, 100))
  }
  const written = () => {
    try { return dir !== undefined && fs.readdirSync(dir, { recursive: true }).some(n => String(n).endsWith('flamegraph.html')) } catch { return false }
  }
  for (let i = 0; i < 1200 && zeroX.exitCode === null && !written(); i++) await new Promise(r => setTimeout(r, 250))
  await new Promise(r => setTimeout(r, 1000)) // let it finish the file it just created
  await stopChild(zeroX, 'SIGTERM', zeroX.pid, 10_000)
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

function logTo(file: string): number {
  return fs.openSync(file, 'a')
}

async function startKubeSim(workDir: string): Promise<{ child: ChildProcess; kubeconfig: string }> {
  const kubeconfig = path.join(workDir, 'kubeconfig.json')
  const fd = logTo(path.join(workDir, 'kube-sim.log'))
  const child = spawn(process.execPath, [CLI, 'kube-sim', '--write-kubeconfig', kubeconfig, '--runtime', 'singleuser', '--log-level', 'warn'], { stdio: ['ignore', fd, fd] })
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
    // 0x's preload exits the hub on SIGINT without the hub's own shutdown, which would stop the user
    // servers: note the hub's descendants first, and stop those still running afterwards
    const leftovers = o.profile === 'hub' ? descendantsOf(hubPid()) : []
    if (o.profile === 'hub') await stopProfiled(hub, hubPid(), profileDirOf())
    else await stopChild(hub, 'SIGINT', hubPid())
    for (const pid of leftovers) if (alive(pid)) { try { process.kill(pid, 'SIGTERM') } catch { /* gone */ } }
    await stopChild(kube?.child, 'SIGTERM')
    await pgServer?.stop()
    await fsp.rm(dir, { recursive: true, force: true })
  }
  // under 0x the hub is 0x's `node --prof … fleethub.js start` child
  const profileDirOf = () => o.profile === 'hub' ? o.profileDir ?? path.join(o.workDir, 'flamegraph-hub') : undefined
  const hubPid = () => o.profile === 'hub' ? findInTree(hub?.pid, c => c.includes('--prof') && c.includes('fleethub.js start')) : hub?.pid
  try {
    pgServer = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: o.log.child({ component: 'postgres' }), settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '400' } })
    const password = randomBytes(12).toString('hex')
    const proxyAuthToken = randomBytes(24).toString('hex')
    const [port, hubPort, apiPort] = [await freeLowPort(), await freeLowPort(), await freeLowPort()]
    const configFile = path.join(dir, 'hub-config.json')
    await fsp.writeFile(configFile, JSON.stringify({ environment: { JUPYTERHUB_ACTIVITY_INTERVAL: String(o.activityIntervalMs / 1000) } }))
    const description: Record<string, unknown> = { kind: 'fleethub', spawner: o.spawner, simulatedCluster: false, userServers: 'fleethub singleuser (built-in), one process each', postgres: 'embedded (fsync off)' }
    const env = { ...process.env, DATABASE_URL: pgServer.url, FLEETHUB_DEV_PASSWORD: password, CONFIGPROXY_AUTH_TOKEN: proxyAuthToken }
    const baseArgs = ['start', '--port', String(port), '--hub-port', String(hubPort), '--proxy-api-url', `http://127.0.0.1:${apiPort}`,
      '--data-dir', path.join(dir, 'data'), '--config', configFile, '--log-level', 'warn', '--admin-users', o.adminUser,
      '--concurrent-spawn-limit', String(o.concurrentSpawnLimit), '--no-cull-idle', '--start-timeout', '120',
      // the built-in single-user server (its websocket echoes): a real jupyterhub-singleuser on PATH would need kernels
      '--singleuser-cmd', `${process.execPath} ${CLI} singleuser`]
    const profileDir = profileDirOf()
    const launch = (extra: string[], extraEnv: Record<string, string>) => {
      const fd = logTo(path.join(o.workDir, 'hub.log'))
      const zeroX = path.join(REPO, 'node_modules/0x/cmd.js')
      const argv = profileDir ? [zeroX, '--output-dir', profileDir, '--', process.execPath, CLI, ...baseArgs, ...extra] : [CLI, ...baseArgs, ...extra]
      // cwd: 0x writes its v8 log into the working directory before moving it
      const child = spawn(process.execPath, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', fd, fd], cwd: o.workDir })
      fs.closeSync(fd)
      return child
    }
    if (o.spawner === 'kube-sim') {
      kube = await startKubeSim(o.workDir)
      hub = launch(['--spawner', 'kubernetes'], { KUBECONFIG: kube.kubeconfig })
      try {
        await waitHttp(`http://127.0.0.1:${hubPort}/hub/health`, hub, path.join(o.workDir, 'hub.log'))
        description.simulatedCluster = true
        description.userServers = 'virtual servers inside the kube-sim process (pods), each on its own loopback address'
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
      // the hub's descendants but the proxy: the local spawner's user servers
      { name: 'user-servers', pid: hubPid, tree: true, descendantsOnly: true, exclude: () => [proxyPid()] },
      ...(kube ? [{ name: 'kube-sim', pid: () => kube?.child.pid, tree: true }] : []),
      { name: 'generator', pid: () => process.pid },
    ]
    const pgUrl = pgServer.url
    return {
      publicUrl, hubUrl: `http://127.0.0.1:${hubPort}`, proxyApiUrl: `http://127.0.0.1:${apiPort}`, proxyAuthToken, password,
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
    publicUrl: publicUrl.replace(/\/+$/, ''), hubUrl: undefined, proxyApiUrl: undefined, proxyAuthToken: undefined, password,
    databaseUrl: undefined, pgConnections: undefined, profileDir: undefined,
    processes: [{ name: 'generator', pid: () => process.pid }],
    description: { kind: 'external', url: publicUrl, simulatedCluster: 'unknown' },
    adminToken: async () => { throw new Error('the api scenarios need --target fleethub (or an API token; not supported yet)') },
    async close() { /* not ours */ },
  }
}
