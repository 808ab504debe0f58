/**
 * `fleethub cull`: a standalone idle culler that talks only to the REST API, with
 * jupyterhub-idle-culler's options and defaults (shared/spec/anchors.md §4), so it runs against
 * fleethub or any JupyterHub ≥ 2.0. It needs a token with admin:servers (and admin:users for
 * --cull-users). Unlike the in-hub culler it sees activity only as the hub reports it.
 */
import { parseArgs } from 'node:util'
import { createHubClient, HubApiError, type HubClient, type ServerModel, type UserModel } from './cull-client.js'

export const CULL_HELP = `usage: fleethub cull --url URL [options]     (token in JUPYTERHUB_API_TOKEN or --token)

Stops idle servers through the JupyterHub REST API (jupyterhub-idle-culler's options).

  --url URL               the hub API (default $JUPYTERHUB_API_URL or http://localhost:8081/hub/api)
  --token T               API token (prefer JUPYTERHUB_API_TOKEN: flags show in ps)
  --timeout S             idle seconds before a server is stopped (default 600)
  --cull-every S          seconds between sweeps (default timeout/2)
  --once                  one sweep, then exit (exit 1 if any action failed)
  --max-age S             stop servers older than this even if active; 0 = never (default 0)
  --cull-users            also delete users left inactive with no server (never admins)
  --remove-named-servers  delete culled named servers, not just stop them
  --concurrency N         hub requests in flight at once (default 10)
  --no-cull-admin-users   leave admins' servers and accounts alone (default: cull them)
  --api-page-size N       users per page; 0 = the hub's default (default 0)
  --dry-run               print what would be done; change nothing

environment: JUPYTERHUB_API_TOKEN, JUPYTERHUB_API_URL, JUPYTERHUB_REQUEST_TIMEOUT (seconds, default 60)
`

export interface CullCliConfig {
  readonly url: string
  readonly token: string
  readonly timeout: number
  readonly cullEvery: number
  readonly once: boolean
  readonly maxAge: number
  readonly cullUsers: boolean
  readonly removeNamedServers: boolean
  readonly concurrency: number
  readonly cullAdminUsers: boolean
  readonly pageSize: number
  readonly dryRun: boolean
  readonly requestTimeout: number
}

export class CullConfigError extends Error {
  readonly code = 'CULL_BAD_CONFIG'
}

const OPTIONS = {
  url: { type: 'string' }, token: { type: 'string' }, timeout: { type: 'string' }, 'cull-every': { type: 'string' },
  once: { type: 'boolean' }, 'max-age': { type: 'string' }, 'cull-users': { type: 'boolean' },
  'remove-named-servers': { type: 'boolean' }, concurrency: { type: 'string' }, 'cull-admin-users': { type: 'boolean' },
  'api-page-size': { type: 'string' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const

/** Pure: argv + env -> a frozen config, or one CullConfigError listing every problem. */
export function parseCullConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CullCliConfig & { help: boolean } {
  let v: Record<string, string | boolean | undefined>
  try {
    v = parseArgs({ args: [...argv], options: OPTIONS, allowNegative: true, strict: true }).values
  } catch (err) {
    throw new CullConfigError((err as Error).message)
  }
  const problems: string[] = []
  const int = (raw: unknown, name: string, def: number, min: number, max = 1e9): number => {
    if (raw === undefined || raw === '') return def
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) { problems.push(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`); return def }
    return n
  }
  const url = String(v.url ?? env.JUPYTERHUB_API_URL ?? 'http://localhost:8081/hub/api')
  try {
    if (!/^https?:$/.test(new URL(url).protocol)) problems.push(`--url: expected an http(s) URL, got ${url}`)
  } catch {
    problems.push(`--url: not a URL: ${url}`)
  }
  const token = (v.token as string | undefined) ?? env.JUPYTERHUB_API_TOKEN ?? ''
  const help = v.help === true
  if (!token && !help) problems.push('no token: set JUPYTERHUB_API_TOKEN (or --token)')
  const timeout = int(v.timeout, '--timeout', 600, 1)
  const cullEvery = int(v['cull-every'], '--cull-every', 0, 0)
  const config = {
    help, url, token, timeout,
    // jupyterhub-idle-culler: 0 (the default) means timeout/2
    cullEvery: cullEvery === 0 ? Math.max(1, Math.floor(timeout / 2)) : cullEvery,
    once: v.once === true,
    maxAge: int(v['max-age'], '--max-age', 0, 0),
    cullUsers: v['cull-users'] === true,
    removeNamedServers: v['remove-named-servers'] === true,
    concurrency: int(v.concurrency, '--concurrency', 10, 1, 1000),
    cullAdminUsers: v['cull-admin-users'] !== false,
    pageSize: int(v['api-page-size'], '--api-page-size', 0, 0, 10_000),
    dryRun: v['dry-run'] === true,
    requestTimeout: int(env.JUPYTERHUB_REQUEST_TIMEOUT, 'JUPYTERHUB_REQUEST_TIMEOUT', 60, 1, 3600),
  }
  if (problems.length > 0) throw new CullConfigError(`invalid options:\n  ${problems.join('\n  ')}`)
  return Object.freeze(config)
}

/** Why a server should go now, or undefined. `now` in ms. */
export function cullReason(s: ServerModel, c: Pick<CullCliConfig, 'timeout' | 'maxAge'>, now: number): { rule: 'idle' | 'max-age'; idle: number } | undefined {
  const started = s.started ? Date.parse(s.started) : NaN
  const last = s.last_activity ? Date.parse(s.last_activity) : started
  if (Number.isNaN(last)) return undefined // nothing to judge by: leave it
  const idle = Math.floor((now - last) / 1000)
  if (idle > c.timeout) return { rule: 'idle', idle }
  if (c.maxAge > 0 && !Number.isNaN(started) && (now - started) / 1000 > c.maxAge) return { rule: 'max-age', idle }
  return undefined
}

export interface SweepSummary { checked: number; stopped: number; pending: number; usersDeleted: number; failed: number }

type Print = (line: string) => void

/** A tiny semaphore: at most `limit` tasks run; `run` waits for a slot. */
function limiter(limit: number) {
  let active = 0
  const waiting: Array<() => void> = []
  const tasks = new Set<Promise<unknown>>()
  return {
    async run(fn: () => Promise<void>): Promise<void> {
      while (active >= limit) await new Promise<void>(r => waiting.push(r))
      active++
      const p = fn().finally(() => { active--; waiting.shift()?.() })
      tasks.add(p)
      void p.finally(() => tasks.delete(p)).catch(() => undefined)
    },
    async drain(): Promise<void> { while (tasks.size > 0) await Promise.allSettled([...tasks]) },
  }
}

/** One pass over the hub: stop idle servers, then (with cullUsers) delete idle users. */
export async function sweepOnce(client: HubClient, c: CullCliConfig, print: Print, now = () => Date.now()): Promise<SweepSummary> {
  const sum: SweepSummary = { checked: 0, stopped: 0, pending: 0, usersDeleted: 0, failed: 0 }
  const slots = limiter(c.concurrency)
  const failed = (what: string, err: unknown) => { sum.failed++; print(`failed ${what}: ${err instanceof Error ? err.message : String(err)}`) }
  const deleteUser = async (u: UserModel, why: string) => {
    if (c.dryRun) return void print(`would delete user ${u.name} (${why})`)
    try {
      if (await client.deleteUser(u.name)) { sum.usersDeleted++; print(`deleted user ${u.name} (${why})`) }
    } catch (err) { failed(`to delete user ${u.name}`, err) }
  }
  const handleUser = async (u: UserModel) => {
    if (u.admin && !c.cullAdminUsers) return
    const servers = Object.entries(u.servers ?? {})
    let alive = 0
    for (const [name, s] of servers) {
      sum.checked++
      const reason = !s.pending && s.ready ? cullReason(s, c, now()) : undefined
      if (!reason) { alive++; continue }
      const label = `${u.name}/${name}`
      const why = reason.rule === 'idle' ? `idle ${reason.idle} s` : `older than ${c.maxAge} s`
      if (c.dryRun) { print(`would stop ${label} (${why})`); alive++; continue }
      try {
        const r = await client.stopServer(u.name, name, c.removeNamedServers)
        if (r === 'pending') { sum.pending++; alive++; print(`stop pending ${label} (${why})`); continue }
        sum.stopped++
        print(`${r === 'gone' ? 'already gone' : c.removeNamedServers && name !== '' ? 'stopped and removed' : 'stopped'} ${label} (${why})`)
      } catch (err) { alive++; failed(`to stop ${label}`, err) }
    }
    // like jupyterhub-idle-culler: a user whose servers all went, and who is inactive, goes too
    if (c.cullUsers && alive === 0 && !u.admin && isInactive(u, c.timeout, now())) await deleteUser(u, 'inactive')
  }
  // Each listing is read to its end before anything is stopped or deleted: paging by offset while
  // the culls take users out of the listed set would shift later users onto pages already read and
  // skip them (found by culler-cli.test.ts with one user per page).
  const everyone = async (state: 'ready' | 'inactive') => {
    const out: UserModel[] = []
    for await (const page of client.users(state)) out.push(...page)
    return out
  }
  try {
    for (const u of await everyone('ready')) await slots.run(() => handleUser(u).catch(err => failed(`on ${u.name}`, err)))
    if (c.cullUsers) {
      await slots.drain() // the first pass's stops and deletions are done before the inactive users are listed
      for (const u of await everyone('inactive')) {
        if (!u.admin && isInactive(u, c.timeout, now())) await slots.run(() => deleteUser(u, 'inactive, no server'))
      }
    }
  } finally {
    await slots.drain()
  }
  return sum
}

function isInactive(u: UserModel, timeout: number, now: number): boolean {
  const last = Date.parse(u.last_activity ?? u.created ?? '')
  return !Number.isNaN(last) && (now - last) / 1000 > timeout
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config: ReturnType<typeof parseCullConfig>
  try {
    config = parseCullConfig(argv, env)
  } catch (err) {
    process.stderr.write(`fleethub cull: ${(err as Error).message}\n\n${CULL_HELP}`)
    return 2
  }
  if (config.help) { process.stdout.write(CULL_HELP); return 0 }
  const client = createHubClient({
    url: config.url, token: config.token, requestTimeoutMs: config.requestTimeout * 1000,
    attempts: 5, retryDelayMs: 500, maxDelayMs: 30_000, pageSize: config.pageSize,
  })
  const print: Print = line => { process.stdout.write(`${new Date().toISOString()} ${line}\n`) }
  let stopping = false
  let wake: (() => void) | undefined
  const onSignal = () => { stopping = true; wake?.() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const version = await client.version()
    print(`culling at ${config.url} (hub ${version}): timeout ${config.timeout} s, max-age ${config.maxAge} s${config.dryRun ? ', dry run' : ''}`)
    for (;;) {
      let sum: SweepSummary
      try {
        sum = await sweepOnce(client, config, print)
      } catch (err) {
        print(`sweep failed: ${err instanceof Error ? err.message : String(err)}`)
        if (config.once) return 1
        sum = { checked: 0, stopped: 0, pending: 0, usersDeleted: 0, failed: 1 }
      }
      print(`summary: ${sum.checked} servers checked, ${sum.stopped} stopped, ${sum.pending} stop pending, ${sum.usersDeleted} users deleted, ${sum.failed} failed${config.dryRun ? ' (dry run)' : ''}`)
      if (config.once) return sum.failed > 0 ? 1 : 0
      if (stopping) return 0
      await new Promise<void>(r => { wake = r; setTimeout(r, config.cullEvery * 1000) })
      if (stopping) return 0
    }
  } catch (err) {
    const code = err instanceof HubApiError ? err.code : 'CULL_FAILED'
    process.stderr.write(`fleethub cull: ${code}: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
