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
  readonly messageIntervalMs: number
  readonly httpIntervalMs: number
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
