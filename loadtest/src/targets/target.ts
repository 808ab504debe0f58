/**
 * The system under test, as the runner and the scenarios see it: URLs, the processes to sample,
 * an admin token, close(). One module per kind of target sits beside this one (fleethub.ts,
 * jupyterhub.ts, external.ts); start-target.ts picks one from the config.
 */
import type { WatchedProcess } from '../resources.js'
import type { RecordedProcess } from './pid-registry.js'

/** A process the restart scenario kills and starts again. */
export type RestartComponent = 'hub' | 'proxy' | 'postgres'

/** What a restart did: the pid killed, and when (performance.now()) it was killed and started again. */
export interface RestartEvent {
  readonly component: RestartComponent
  readonly killedPid: number | undefined
  readonly how: string
  readonly killedAt: number
  /** When the replacement answered (the hub's health, the proxy's routes, Postgres a connection). */
  readonly upAt: number
}

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
  /** Every process this target started, as recorded so far (pid-registry.ts); absent for an external hub. */
  readonly pids?: () => RecordedProcess[]
  /** After close(): the recorded processes that outlived their orderly stop and were signalled at the end. */
  readonly leftovers?: () => RecordedProcess[]
  /** SIGKILL every recorded process still running, now (a second Ctrl-C). */
  readonly killAllNow?: () => void
  /** Kill one process (SIGKILL; Postgres an immediate shutdown) and have it started again, as an outage does. fleethub targets only. */
  readonly restart?: (component: RestartComponent) => Promise<RestartEvent>
  close(): Promise<void>
}

export class TargetUnavailable extends Error {
  readonly code = 'LOADTEST_TARGET_UNAVAILABLE'
}
