/**
 * A whole `fleethub start` as real processes, for tests that signal or kill it: started so that it
 * leads its own process group (as in a terminal), on free ports, with its own embedded Postgres in
 * a temp dir; and what it consists of, read from /proc (descendants, their process groups and
 * sessions), so a test can assert that nothing of it is left and a failed test stops what is.
 * Runs dist/ (`npm run build` first).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import { findRunningEmbedded, startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createLogger } from '../../core/src/log.js'
import { Browser } from './browser.js'
import { waitFor } from './wait.js'

export const CLI = path.resolve(import.meta.dirname, '../../dist/cli/fleethub.js')
export const PASSWORD = 'test-password-123'
export const BUILT_IN = `${process.execPath} ${CLI} singleuser`

export interface Proc { pid: number, ppid: number, pgrp: number, sid: number, state: string, startTime: number, cmd: string }

/** Every process on the machine, from /proc (stat fields after the command name, which may hold spaces). */
export function readProcs(): Proc[] {
  const procs: Proc[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()
      procs.push({ pid: Number(name), state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), sid: Number(f[3]), startTime: Number(f[19]), cmd })
    } catch { /* exited meanwhile */ }
  }
  return procs
}

/** The stack as it runs: fleethub's descendants, and every process in their groups and sessions. */
export function stackOf(root: number): Proc[] {
  const procs = readProcs()
  const tree = new Set([root])
  for (let grew = true; grew;) {
    grew = false
    for (const p of procs) if (tree.has(p.ppid) && !tree.has(p.pid)) { tree.add(p.pid); grew = true }
  }
  const members = procs.filter(p => tree.has(p.pid))
  const mine = procs.find(p => p.pid === process.pid)!
  const groups = new Set(members.map(p => p.pgrp).filter(g => g !== mine.pgrp))
  const sessions = new Set(members.map(p => p.sid).filter(s => s !== mine.sid && s !== 0))
  return procs.filter(p => tree.has(p.pid) || groups.has(p.pgrp) || sessions.has(p.sid))
}

/** Processes of `stack` still running: the same pids (same start time), or anything in its groups or sessions. Zombies are dead. */
export function leftOf(stack: readonly Proc[]): Proc[] {
  const same = new Set(stack.map(p => `${p.pid}:${p.startTime}`))
  const groups = new Set(stack.map(p => p.pgrp)), sessions = new Set(stack.map(p => p.sid))
  return readProcs().filter(p => p.state !== 'Z' && p.pid !== process.pid &&
    (same.has(`${p.pid}:${p.startTime}`) || groups.has(p.pgrp) || sessions.has(p.sid)))
}

export const describe = (p: Proc) => `${p.pid} ${p.cmd.slice(0, 120)}`

/** Leftovers get a moment (a kernel reaping an exited child), then they count. */
export async function leftAfter(stack: readonly Proc[], graceMs = 2000): Promise<Proc[]> {
  const deadline = Date.now() + graceMs
  for (;;) {
    const left = leftOf(stack)
    if (left.length === 0 || Date.now() > deadline) return left
    await new Promise(r => setTimeout(r, 100))
  }
}

/** Kill, by pid, whatever a failed test left of a stack, so that nothing outlives the test. */
export function killLeftovers(stack: readonly Proc[]): void {
  for (const p of leftOf(stack)) { try { process.kill(p.pid, 'SIGKILL') } catch { /* gone */ } }
}

export interface Hub {
  readonly child: ChildProcess
  readonly pid: number
  readonly url: string
  readonly exited: Promise<number | null>
  /** Every process of this stack seen so far: what the teardown of a failed test stops. */
  readonly seen: Proc[]
  output(): string
}

export async function tempDataDir(t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-signals-'))
  await fs.chmod(dir, 0o755) // as root the embedded Postgres runs as another OS user and must enter it
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

/** `fleethub start` leading its own process group (as in a terminal), on free ports; resolves once its banner is out. */
export async function startFleethub(t: Test, dataDir: string, args: string[]): Promise<Hub> {
  const env: NodeJS.ProcessEnv = { ...process.env, FLEETHUB_DEV_PASSWORD: PASSWORD }
  for (const key of ['DATABASE_URL', 'FLEETHUB_DATA_DIR', 'FLEETHUB_SPAWNER', 'CONFIGPROXY_AUTH_TOKEN']) delete env[key]
  const child = spawn(process.execPath, [CLI, 'start', '--ip', '127.0.0.1', '--port', '0', '--hub-port', '0',
    '--proxy-api-url', 'http://127.0.0.1:0', '--data-dir', dataDir, '--no-cull-idle', '--log-level', 'info', ...args],
  { detached: true, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', d => { out += d })
  child.stderr!.on('data', d => { out += d })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const pid = child.pid!
  const seen: Proc[] = []
  const remember = setInterval(() => { if (child.exitCode === null) seen.push(...stackOf(pid)) }, 500)
  t.teardown(async () => {
    // a failed test: stop what is left, by pid (the group first, as an operator would)
    clearInterval(remember)
    if (child.exitCode === null && child.signalCode === null) {
      seen.push(...stackOf(pid))
      try { process.kill(-pid, 'SIGTERM') } catch { /* gone */ }
      await Promise.race([exited, new Promise(r => setTimeout(r, 30_000).unref())])
    }
    killLeftovers(seen)
  })
  const url = await waitFor('the fleethub banner', async () => {
    if (child.exitCode !== null) throw new Error(`fleethub start exited with ${child.exitCode}:\n${out}`)
    return /fleethub is running at (http:\/\/\S+)/.exec(out)?.[1]
  }, 90_000)
  return { child, pid, url: url.replace('//localhost:', '//127.0.0.1:'), exited, seen, output: () => out }
}

export async function startServer(url: string, user: string): Promise<void> {
  const b = new Browser(url)
  await b.login(user, PASSWORD)
  await b.fetch('/hub/spawn')
  const res = await b.fetch(`/hub/api/users/${user}/server/progress`, { headers: { referer: `${url}/hub/home` } })
  const events = (await res.text()).split('\n\n').filter(c => c.startsWith('data: ')).map(c => JSON.parse(c.slice(6)) as { ready?: boolean })
  const last = events[events.length - 1]
  if (last?.ready !== true) throw new Error(`the server did not start: ${JSON.stringify(last)}`)
}

export interface ServerRow { user: string, state: string, pid: number | undefined }

export async function serverRows(url: string): Promise<ServerRow[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ user: string, state: string, spawner_state: { pid?: number } }>(
      'select u.name as "user", s.state, s.spawner_state from servers s join users u on u.id = s.user_id order by u.name')
    return rows.map(r => ({ user: r.user, state: r.state, pid: r.spawner_state.pid }))
  } finally { await client.end() }
}

/** The rows as the stopped stack left them: start the same embedded cluster again and read them. */
export async function rowsAfterStop(t: Test, dataDir: string): Promise<ServerRow[]> {
  const db = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pgdata'), log: createLogger('silent') })
  t.teardown(() => db.stop())
  try { return await serverRows(db.url) } finally { await db.stop() }
}

/**
 * While it runs: the stack has its Postgres, its proxy and the user's server (a server adopted from
 * an earlier hub is not this one's descendant), and the row says running.
 */
export async function checkRunning(t: Test, hub: Hub, dataDir: string, adopted = false): Promise<{ stack: Proc[], serverPid: number }> {
  const url = await findRunningEmbedded(path.join(dataDir, 'pgdata'))
  t.ok(url, 'the embedded Postgres runs')
  const rows = await serverRows(url!)
  t.match(rows, [{ user: 'alice', state: 'running' }], 'the server is recorded as running')
  const serverPid = rows[0]!.pid!
  const stack = stackOf(hub.pid)
  hub.seen.push(...stack)
  if (adopted) hub.seen.push(...readProcs().filter(p => p.pid === serverPid))
  const postmaster = Number((await fs.readFile(path.join(dataDir, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0])
  t.ok(stack.some(p => p.pid === postmaster), `the stack includes Postgres (${postmaster})`)
  t.ok(stack.some(p => p.cmd.includes('proxy/src/main.js')), 'the stack includes the proxy')
  if (!adopted) t.ok(stack.some(p => p.pid === serverPid), `the stack includes the user server (${serverPid})`)
  return { stack, serverPid }
}

export async function exitCode(hub: Hub, timeoutMs = 90_000): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'timeout'>(r => { timer = setTimeout(() => r('timeout'), timeoutMs) })
  try { return await Promise.race([hub.exited, late]) } finally { clearTimeout(timer) }
}

