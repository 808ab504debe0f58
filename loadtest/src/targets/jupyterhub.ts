/**
 * `--target jupyterhub` (and the other side of `--compare jupyterhub`): JupyterHub 3.0 with
 * configurable-http-proxy 5.3 and sim-servers, started here and stopped at close().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { freeLowPort, startEmbeddedPostgres, type RunningPostgres } from '../../../core/src/embedded-postgres.js'
import type { Logger } from '../../../core/src/log.js'
import type { WatchedProcess } from '../resources.js'
import { alive, CLI, findInTree, logTo, ownedCommand, rangeArg, REPO, stopChild, waitHttp } from './processes.js'
import { PidRegistry, type RecordedProcess } from './pid-registry.js'
import { TargetUnavailable, type Target } from './target.js'

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
  const pids = new PidRegistry()
  const noteTree = () => { pids.recordTree('jupyterhub', hub?.pid); pids.recordTree('sim-servers', sim?.pid); pids.record('postgres', pgServer?.pid) }
  const watch = setInterval(noteTree, 2000).unref()
  let leftovers: RecordedProcess[] = []
  const cleanup = async () => {
    clearInterval(watch)
    noteTree()
    chpPid ??= findInTree(hub?.pid, isChp)
    // JupyterHub stops its proxy on SIGTERM (cleanup_proxy); the servers go with sim-servers
    await stopChild(hub, 'SIGTERM', hub?.pid, 60_000)
    if (chpPid !== undefined && alive(chpPid)) { try { process.kill(chpPid, 'SIGTERM') } catch { /* gone */ } }
    await stopChild(sim, 'SIGTERM', sim?.pid, 30_000)
    await pgServer?.stop()
    leftovers = await pids.stopAll()
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
    const simCmd = await ownedCommand(process.execPath, [CLI, 'loadtest', 'sim-servers', '--port', String(simPort), '--start-time', rangeArg(o.serverStartTime), '--log-level', 'warn'], 'SIGTERM')
    sim = spawn(simCmd.file, simCmd.args, { env: { ...process.env, SIM_SERVERS_TOKEN: simToken }, stdio: ['ignore', fd, fd], detached: simCmd.detached })
    pids.record('sim-servers', sim.pid)
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
    // its open-file limit raised, which CHP inherits (fd-limits.ts)
    const hubCmd = await ownedCommand(jupyterhub, ['-f', JUPYTERHUB_CONFIG], 'SIGTERM')
    hub = spawn(hubCmd.file, hubCmd.args, { env, cwd: dir, stdio: ['ignore', fd, fd], detached: hubCmd.detached })
    pids.record('jupyterhub', hub.pid)
    fs.closeSync(fd)
    const hubUrl = `http://127.0.0.1:${hubPort}`
    const publicUrl = `http://127.0.0.1:${port}`
    await waitHttp(`${hubUrl}/hub/health`, hub, hubLog, s => s === 200)
    // through CHP: 200 once the hub has added its default route
    await waitHttp(`${publicUrl}/hub/health`, hub, hubLog, s => s === 200)
    chpPid = findInTree(hub.pid, isChp)
    pids.record('chp', chpPid)
    noteTree()
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
      pids: () => pids.list(), leftovers: () => leftovers, killAllNow: () => pids.killAllNow(),
      async close() { await cleanup() },
      simServers: { url: simUrl, token: simToken },
      serviceToken,
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}
