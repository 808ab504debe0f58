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
