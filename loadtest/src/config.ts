/**
 * `fleethub loadtest` options: a pure parse of argv + env into one frozen config, or one
 * ConfigError listing every problem. Durations take `ms`, `s`, `m`, `h` suffixes (bare = seconds).
 */
import { parseArgs } from 'node:util'
import { parseRange as parseKubeSimRange } from '../../kube-sim/src/config.js'
import { CAMPUS_WAVE_USERS, GENERATORS_AUTO_MAX, IN_PROCESS_MAX_USERS, MODELS, USERS_PER_GENERATOR, SERVING_STOPPED_SHARE, type LoadtestConfig, type ModelName } from './loadtest-config.js'
import { DEFAULTS } from './scenarios/scenario.js'
import { findScenario, SCENARIOS } from './scenarios/index.js'
import type { LeaveMode } from './simulated-user.js'

export class ConfigError extends Error {
  readonly code = 'LOADTEST_BAD_CONFIG'
}

export const LOADTEST_HELP = `usage: fleethub loadtest <scenario> [options]

scenarios: ${SCENARIOS.map(s => s.name).join(' | ')} (see shared/LOADTEST.md)
(fleethub loadtest sim-servers --help: the virtual-server host JupyterHub's spawner uses)

  --users N                 users per step (default 20)
  --steps N,N,...           several steps of users (ramp default 600,1000,2000,5000,10000,20000)
  --arrival D               arrivals spread over D (default 120s for class-start, 30s otherwise)
  --duration D              work after the last arrival / load time (default 60s; steady 10m)
  --target fleethub|jupyterhub|URL   start the whole stack here (default), start JupyterHub 3.0 with
                            CHP 5.3 and sim-servers (loadtest/jupyterhub/jupyterhub_config.py), or drive
                            a running hub's public URL (then FLEETHUB_DEV_PASSWORD or LOADTEST_PASSWORD
                            is the login password)
  --compare jupyterhub      run each step against fleethub, then JupyterHub (alternating, each started
                            fresh per step) and report every figure for both with its ratio
  --jupyterhub-db sqlite|postgres   JupyterHub's database: sqlite (its default) or an embedded
                            Postgres of its own set up as fleethub's (needs python3-psycopg2)
  --spawner local|kube-sim  fleethub's user servers as local processes or pods in kube-sim (default
                            local; kube-sim with --compare, so both hubs get the same virtual servers)
  --server-start-time D[-D] each user server's start time, uniform, e.g. 5s-15s (kube-sim and
                            sim-servers; default 0)
  --leave tidy=0.3,abandon=0.5,silent-ws=0.2   how users leave (shares, normalised)
  --model class|campus      a named set of the intervals below (default class): class = a student in
                            a notebook (message 3s, HTTP 10s, activity 300s, arrivals uniform); campus =
                            a university through a day (message 60s, HTTP 60s, activity 300s, arrivals
                            in class-sized waves of ${CAMPUS_WAVE_USERS}); an explicit flag overrides the model's value
  --activity-interval D     how often user servers report activity (model: 300s)
  --message-interval D      mean time between websocket messages (model: 3s class, 60s campus)
  --http-interval D         mean time between HTTP requests to the server (model: 10s class, 60s campus)
  --wave-users N            arrivals in waves of up to N users, each over the first quarter of its
                            share of --arrival; 0 = uniform (model: 0 class, ${CAMPUS_WAVE_USERS} campus)
  --keep-going              ramp: run every step even after one breaks an SLO; stop only when more
                            than ${SERVING_STOPPED_SHARE * 100}% of a step's users fail (serving stopped)
  --cull-timeout D --cull-every D   cull: the hub's idle timeout and sweep period (default 10s, 2s);
                            the servers' activity interval defaults to half the timeout
  --active-share F          cull: share of users who keep working while the rest go idle (default 0.25)
  --message-bytes N         websocket message padding (default 100)
  --connections N           autocannon connections for api/activity-storm (default 20)
  --concurrent-spawn-limit N  the hub's limit (default 100)
  --workers N               run fleethub as \`fleethub start --workers N\`: N hub processes behind the
                            one hub port (default FLEETHUB_WORKERS, else 1; recorded in the report)
  --generators N|auto       processes that run a step's simulated users (class-start, steady, ramp):
                            N child processes, users dealt round-robin, each with its own CPU and
                            event loop (1 = in this process); auto (default): in this process up to
                            ${IN_PROCESS_MAX_USERS} users, else one per ${USERS_PER_GENERATOR} users, at most ${GENERATORS_AUTO_MAX}
  --profile hub|none        run fleethub's hub under node --cpu-prof and keep its flamegraph of the
                            load and the raw profile (default none; with --compare only fleethub's
                            hub is profiled: JupyterHub would need py-spy)
  --slo-hub-p99 MS --slo-proxy-p99 MS --slo-ws-p99 MS   SLOs (default 1000, 50, 250)
  --live auto|tty|lines|off live display (default auto: in place on a TTY, lines otherwise)
  --label TEXT              part of the report folder name (default: git short sha or "run")
  --out DIR                 reports go to DIR/<date>-<scenario>-<label>/ (default bench-results)

Durations: 500ms, 30s, 10m, 1h (bare numbers are seconds).
`

export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) throw new ConfigError(`${what}: not a duration: ${JSON.stringify(text)}`)
  const n = Number(m[1])
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'])
}

function positiveInt(text: string, what: string, max = 1_000_000): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ConfigError(`${what}: expected an integer 1..${max}: ${JSON.stringify(text)}`)
  return n
}

/** `5-15s` (the unit applies to both ends, as kube-sim's --start-time), `500ms-2s`, `3s`, `0`. */
export function parseRange(text: string, what: string): { min: number; max: number } {
  try { return parseKubeSimRange(text, what) } catch (err) { throw new ConfigError((err as Error).message) }
}

export function parseLeaveMix(text: string): Record<LeaveMode, number> {
  const mix: Record<LeaveMode, number> = { tidy: 0, abandon: 0, 'silent-ws': 0 }
  for (const part of text.split(',')) {
    const [k = '', v = ''] = part.split('=')
    if (!(k in mix)) throw new ConfigError(`--leave: unknown way to leave ${JSON.stringify(k)} (tidy, abandon, silent-ws)`)
    const n = Number(v)
    if (!Number.isFinite(n) || n < 0) throw new ConfigError(`--leave: ${k} needs a share >= 0`)
    mix[k as LeaveMode] = n
  }
  const total = mix.tidy + mix.abandon + mix['silent-ws']
  if (total <= 0) throw new ConfigError('--leave: the shares add up to 0')
  for (const k of Object.keys(mix) as LeaveMode[]) mix[k] = mix[k] / total
  return mix
}

const OPTIONS = {
  users: { type: 'string' }, steps: { type: 'string' }, arrival: { type: 'string' }, duration: { type: 'string' },
  target: { type: 'string', default: 'fleethub' }, compare: { type: 'string' }, spawner: { type: 'string' },
  'jupyterhub-db': { type: 'string', default: 'sqlite' },
  'server-start-time': { type: 'string', default: '0' },
  leave: { type: 'string', default: 'tidy=0.3,abandon=0.5,silent-ws=0.2' },
  // no defaults: the model gives them, a flag overrides (parseLoadtestConfig)
  'activity-interval': { type: 'string' }, 'message-interval': { type: 'string' },
  'http-interval': { type: 'string' }, 'wave-users': { type: 'string' }, 'message-bytes': { type: 'string', default: '100' },
  model: { type: 'string', default: 'class' }, 'keep-going': { type: 'boolean', default: false },
  'cull-timeout': { type: 'string', default: '10s' }, 'cull-every': { type: 'string', default: '2s' }, 'active-share': { type: 'string', default: '0.25' },
  connections: { type: 'string', default: '20' }, 'concurrent-spawn-limit': { type: 'string', default: '100' },
  workers: { type: 'string' }, generators: { type: 'string', default: 'auto' },
  profile: { type: 'string', default: 'none' }, label: { type: 'string' }, out: { type: 'string', default: 'bench-results' },
  'slo-hub-p99': { type: 'string', default: '1000' }, 'slo-proxy-p99': { type: 'string', default: '50' }, 'slo-ws-p99': { type: 'string', default: '250' },
  live: { type: 'string', default: 'auto' }, help: { type: 'boolean', short: 'h' },
} as const

export function parseLoadtestConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): LoadtestConfig {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const v = parsed.values
  const help = v.help === true
  const problems: string[] = []
  const attempt = <T>(fn: () => T, fallback: T): T => {
    try { return fn() } catch (err) { problems.push((err as Error).message); return fallback }
  }
  const scenario = parsed.positionals[0]
  const known = findScenario(scenario)
  if (!help && !known) problems.push(`scenario: expected one of ${SCENARIOS.map(s => s.name).join(', ')}, got ${JSON.stringify(scenario ?? '')}`)
  if (parsed.positionals.length > 1) problems.push(`unexpected arguments: ${parsed.positionals.slice(1).join(' ')}`)
  const defaults = known?.defaults ?? DEFAULTS
  const defaultSteps = [...defaults.steps]
  const steps = v.steps !== undefined
    ? attempt(() => v.steps!.split(',').map(s => positiveInt(s, '--steps')), defaultSteps)
    : v.users !== undefined ? attempt(() => [positiveInt(v.users!, '--users')], defaultSteps) : defaultSteps
  if (v.steps !== undefined && v.users !== undefined) problems.push('give --users or --steps, not both')
  const arrivalMs = attempt(() => parseDuration(v.arrival ?? defaults.arrival, '--arrival'), 0)
  const durationMs = attempt(() => parseDuration(v.duration ?? defaults.duration, '--duration'), 0)
  const target = v.target
  const started = target === 'fleethub' || target === 'jupyterhub' // a stack this run starts (and knows the password of)
  if (!started && !/^https?:\/\//.test(target)) problems.push(`--target: fleethub, jupyterhub or an http(s) URL, got ${JSON.stringify(target)}`)
  if (v.compare !== undefined && v.compare !== 'jupyterhub') problems.push(`--compare: jupyterhub, got ${JSON.stringify(v.compare)}`)
  if (v.compare !== undefined && target !== 'fleethub') problems.push('--compare jupyterhub runs against fleethub: leave --target at fleethub')
  const spawner = v.spawner ?? (v.compare !== undefined || target === 'jupyterhub' ? 'kube-sim' : defaults.spawner ?? 'local')
  if (spawner !== 'local' && spawner !== 'kube-sim') problems.push(`--spawner: local or kube-sim, got ${JSON.stringify(v.spawner)}`)
  const jupyterhubDb = v['jupyterhub-db']
  if (jupyterhubDb !== 'sqlite' && jupyterhubDb !== 'postgres') problems.push(`--jupyterhub-db: sqlite or postgres, got ${JSON.stringify(jupyterhubDb)}`)
  else if (jupyterhubDb === 'postgres' && target !== 'jupyterhub' && v.compare === undefined) problems.push('--jupyterhub-db applies to JupyterHub: add --target jupyterhub or --compare jupyterhub')
  const serverStartTime = attempt(() => parseRange(v['server-start-time'], '--server-start-time'), { min: 0, max: 0 })
  if (serverStartTime.max > 0 && spawner === 'local' && target !== 'jupyterhub') problems.push('--server-start-time applies to kube-sim and sim-servers: add --spawner kube-sim')
  if (v.profile !== 'hub' && v.profile !== 'none') problems.push(`--profile: hub or none, got ${JSON.stringify(v.profile)}`)
  if (v.profile === 'hub' && target !== 'fleethub') problems.push('--profile hub profiles fleethub\'s hub (node --cpu-prof): use --target fleethub or --compare jupyterhub (JupyterHub is not profiled: py-spy is not installed)')
  if (!['auto', 'tty', 'lines', 'off'].includes(v.live)) problems.push(`--live: auto, tty, lines or off, got ${JSON.stringify(v.live)}`)
  const workersText = v.workers ?? env.FLEETHUB_WORKERS
  const workers = workersText === undefined || workersText === '' ? 1 : attempt(() => positiveInt(workersText, v.workers !== undefined ? '--workers' : 'FLEETHUB_WORKERS', 64), 1)
  if (v.workers !== undefined && workers > 1 && target !== 'fleethub') problems.push('--workers applies to the fleethub stack this run starts: use --target fleethub (or --compare jupyterhub)')
  const generators: number | 'auto' = v.generators === 'auto' ? 'auto' : attempt<number | 'auto'>(() => positiveInt(v.generators, '--generators (a number or auto)', 64), 'auto')
  if (v.model !== 'class' && v.model !== 'campus') problems.push(`--model: class or campus, got ${JSON.stringify(v.model)}`)
  const model = MODELS[v.model as ModelName] ?? MODELS.class
  const activeShare = Number(v['active-share'])
  if (!(activeShare >= 0 && activeShare < 1)) problems.push(`--active-share: a share in [0, 1), got ${JSON.stringify(v['active-share'])}`)
  const cullTimeoutMs = attempt(() => parseDuration(v['cull-timeout'], '--cull-timeout'), 10_000)
  const cullEveryMs = attempt(() => parseDuration(v['cull-every'], '--cull-every'), 2000)
  // the hub takes whole seconds
  if (cullTimeoutMs < 1000 || cullEveryMs < 1000) problems.push('--cull-timeout and --cull-every: at least 1s')
  if (known?.needs?.culler && target !== 'fleethub') problems.push(`${known.name} starts fleethub with its culler on: use --target fleethub`)
  if (known?.needs?.restart && target !== 'fleethub') problems.push(`${known.name} kills and restarts fleethub's processes: use --target fleethub`)
  if (known?.needs?.restart && v.compare !== undefined) problems.push(`${known.name}: --compare is not supported yet (restarting JupyterHub, CHP and sim-servers needs its own process handling)`)
  if (known?.needs?.culler && v.compare !== undefined) problems.push(`${known.name}: --compare is not supported yet (JupyterHub has no culler of its own: it would need jupyterhub-idle-culler or \`fleethub cull\` as its service)`)
  const label = v.label ?? env.LOADTEST_LABEL ?? 'run'
  if (!/^[A-Za-z0-9._-]{1,60}$/.test(label)) problems.push(`--label: letters, digits, . _ - (at most 60), got ${JSON.stringify(label)}`)
  const password = started ? undefined : env.LOADTEST_PASSWORD ?? env.FLEETHUB_DEV_PASSWORD
  if (!help && !started && !password) problems.push('--target URL needs the login password in LOADTEST_PASSWORD or FLEETHUB_DEV_PASSWORD')
  const config: LoadtestConfig = {
    scenario: scenario ?? 'class-start', steps, arrivalMs, durationMs, target, compare: v.compare as 'jupyterhub' | undefined,
    spawner: spawner as 'local' | 'kube-sim', serverStartTime, jupyterhubDb: jupyterhubDb as 'sqlite' | 'postgres',
    leaveMix: attempt(() => parseLeaveMix(v.leave), { tidy: 1, abandon: 0, 'silent-ws': 0 }),
    model: model.name,
    // the cull scenario: servers report activity within half the idle timeout (as 300 s does for
    // a 3600 s timeout), else an active server's last report could be older than the timeout
    activityIntervalMs: attempt(() => {
      const ms = parseDuration(v['activity-interval'] ?? model.activityInterval, '--activity-interval')
      return known?.needs?.culler && v['activity-interval'] === undefined ? Math.max(1000, Math.min(ms, Math.floor(cullTimeoutMs / 2000) * 1000)) : ms
    }, 0),
    messageIntervalMs: attempt(() => parseDuration(v['message-interval'] ?? model.messageInterval, '--message-interval'), 0),
    httpIntervalMs: attempt(() => parseDuration(v['http-interval'] ?? model.httpInterval, '--http-interval'), 0),
    waveUsers: v['wave-users'] === undefined ? model.waveUsers : v['wave-users'] === '0' ? 0 : attempt(() => positiveInt(v['wave-users']!, '--wave-users'), 0),
    overridden: (['activity-interval', 'message-interval', 'http-interval', 'wave-users'] as const).filter(k => v[k] !== undefined),
    keepGoing: v['keep-going'] === true,
    cull: { timeoutMs: cullTimeoutMs, everyMs: cullEveryMs, activeShare: Number.isFinite(activeShare) ? activeShare : 0.25 },
    messageBytes: attempt(() => positiveInt(v['message-bytes'], '--message-bytes', 1 << 20), 0),
    connections: attempt(() => positiveInt(v.connections, '--connections', 10_000), 0),
    concurrentSpawnLimit: attempt(() => positiveInt(v['concurrent-spawn-limit'], '--concurrent-spawn-limit', 100_000), 0),
    workers, generators,
    profile: v.profile as 'hub' | 'none', label, out: v.out, password,
    slo: {
      hubApiP99Ms: attempt(() => positiveInt(v['slo-hub-p99'], '--slo-hub-p99'), 0),
      proxyAddedP99Ms: attempt(() => positiveInt(v['slo-proxy-p99'], '--slo-proxy-p99'), 0),
      wsEchoP99Ms: attempt(() => positiveInt(v['slo-ws-p99'], '--slo-ws-p99'), 0),
    },
    live: v.live as LoadtestConfig['live'], help,
  }
  if (problems.length > 0 && !help) throw new ConfigError(problems.join('; '))
  return Object.freeze(config)
}
