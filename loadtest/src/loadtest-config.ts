/**
 * The load test's one frozen config: parseLoadtestConfig (config.ts) returns it; the runner, the
 * targets and the scenarios read it.
 */
import type { LeaveMode } from './simulated-user.js'

/** Service-level objectives that mark a step healthy (shared/LOADTEST.md). */
export interface Slo {
  /** Hub API p99, ms. Default 1000. */
  readonly hubApiP99Ms: number
  /** Proxy added latency p99, ms. Default 50. */
  readonly proxyAddedP99Ms: number
  /** Websocket echo p99, ms. Default 250. */
  readonly wsEchoP99Ms: number
}

/** The named user models (shared/LOADTEST.md, issue #16): one set of intervals each. */
export type ModelName = 'class' | 'campus'

export interface UserModel {
  readonly name: ModelName
  readonly messageInterval: string
  readonly httpInterval: string
  readonly activityInterval: string
  /** Arrivals in waves of up to this many users (0: uniform over --arrival). */
  readonly waveUsers: number
  readonly description: string
}

/**
 * A wave of the campus model: one large lecture's students. 200 is the size of a big first-year
 * class (and of the ~300 real users at which CHP once broke, shared/LOADTEST.md): a campus hub sees
 * such classes start one after another, each arriving within a couple of minutes of its start.
 */
export const CAMPUS_WAVE_USERS = 200

export const MODELS: Readonly<Record<ModelName, UserModel>> = {
  class: { name: 'class', messageInterval: '3s', httpInterval: '10s', activityInterval: '300s', waveUsers: 0,
    description: 'a student working in a notebook: a websocket message every 3 s, an HTTP request every 10 s, activity every 300 s, arrivals uniform' },
  campus: { name: 'campus', messageInterval: '60s', httpInterval: '60s', activityInterval: '300s', waveUsers: CAMPUS_WAVE_USERS,
    description: `a university through a day: every user keeps a tab and its websocket open, a message every 60 s, an HTTP request every 60 s, activity every 300 s, arrivals in class-sized waves (up to ${CAMPUS_WAVE_USERS} users each, evenly spaced over --arrival, each arriving over the first quarter of its share)` },
}

/** --keep-going stops the ramp at the first step where more than this share of users failed: serving stopped. */
export const SERVING_STOPPED_SHARE = 0.05

/**
 * --generators auto: a step of at most this many users runs in the generator's own process, exactly
 * as before there were child generators, so small runs and CI behave the same. The class
 * step saturated one core at 3,000 users (86%): 1,000 class users cost about 30% of a core, far
 * from the 85% saturation limit (run.ts), so one process is sure to keep up there.
 */
export const IN_PROCESS_MAX_USERS = 1000
/**
 * --generators auto above IN_PROCESS_MAX_USERS: one child process per this many users. Half the
 * 3,000 class users that took one process to 86% of a core: about 43% each, headroom for the
 * bursts of a class start (logins and spawns at once) and for garbage collection.
 */
export const USERS_PER_GENERATOR = 1500
/**
 * --generators auto: at most this many child processes. The machine has 2 cores that the hub, the
 * proxy and Postgres share with the generator; more processes than twice the cores only add
 * switching and memory (each child is a Node process of its own).
 */
export const GENERATORS_AUTO_MAX = 4

/** How many generator processes run a user step of `users` users: 1 is in-process (scenarios/users.ts). */
export function generatorProcesses(setting: number | 'auto', users: number): number {
  if (setting !== 'auto') return Math.max(1, Math.min(setting, users))
  if (users <= IN_PROCESS_MAX_USERS) return 1
  return Math.min(GENERATORS_AUTO_MAX, Math.ceil(users / USERS_PER_GENERATOR))
}

export interface LoadtestConfig {
  /** A scenario's name (scenarios/index.ts lists them). */
  readonly scenario: string
  /** Users per step (one step unless --steps). Default 20. */
  readonly steps: readonly number[]
  /** Arrivals spread uniformly over this many ms. Default 120 s (class-start), 30 s otherwise. */
  readonly arrivalMs: number
  /** How long users work after the last arrival (class-start, steady), or the load time (api, activity-storm). */
  readonly durationMs: number
  /** `fleethub`: start the whole stack; `jupyterhub`: JupyterHub 3.0 + CHP + sim-servers; else the public URL of a running hub. */
  readonly target: 'fleethub' | 'jupyterhub' | string
  /** `jupyterhub`: run every step against fleethub and JupyterHub, alternately, and report ratios. */
  readonly compare: 'jupyterhub' | undefined
  /** `local` or `kube-sim` (default kube-sim with --compare or --target jupyterhub, so both hubs get the same virtual servers; else local). */
  readonly spawner: 'local' | 'kube-sim'
  /** JupyterHub's database: `sqlite` (its default) or `postgres` (an embedded Postgres of its own, as fleethub's). */
  readonly jupyterhubDb: 'sqlite' | 'postgres'
  /** Each user server's start time, ms (uniform range): kube-sim's container start and sim-servers' start. Default 0. */
  readonly serverStartTime: { readonly min: number; readonly max: number }
  readonly leaveMix: Readonly<Record<LeaveMode, number>>
  /** JUPYTERHUB_ACTIVITY_INTERVAL given to the user servers, ms. Default 300 s (30 s for activity-storm is typical). */
  readonly activityIntervalMs: number
  /** --model: the named set the three intervals and the arrival waves come from. Default class. */
  readonly model: ModelName
  readonly messageIntervalMs: number
  readonly httpIntervalMs: number
  /** Arrivals in waves of up to this many users (scenarios/users.ts arrivalOffsets); 0 = uniform. Default: the model's. */
  readonly waveUsers: number
  /** The model's values that a flag overrode (`message-interval`, ...), for the report. */
  readonly overridden: readonly string[]
  /** --keep-going: a ramp runs every step, stopping only when serving stopped (SERVING_STOPPED_SHARE). Default false. */
  readonly keepGoing: boolean
  /** The cull scenario: the hub's idle timeout and sweep period, and the share of users who stay active. Default 10 s, 2 s, 0.25. */
  readonly cull: { readonly timeoutMs: number; readonly everyMs: number; readonly activeShare: number }
  readonly messageBytes: number
  /** Connections for the autocannon scenarios. Default 20. */
  readonly connections: number
  readonly concurrentSpawnLimit: number
  /**
   * --generators: the processes that run a user step's simulated users (class-start, steady, ramp):
   * a number (1 = in this process), or `auto` (generatorProcesses). Default auto.
   */
  readonly generators: number | 'auto'
  /** fleethub's hub processes: `fleethub start --workers N` (--workers, else FLEETHUB_WORKERS, else 1). */
  readonly workers: number
  readonly profile: 'hub' | 'none'
  readonly label: string
  readonly out: string
  readonly password: string | undefined
  readonly slo: Slo
  readonly live: 'auto' | 'tty' | 'lines' | 'off'
  readonly help: boolean
}
