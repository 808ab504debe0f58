/**
 * The system under test, as the runner and the scenarios see it: URLs, the processes to sample,
 * an admin token, close(). One module per kind of target sits beside this one (fleethub.ts,
 * jupyterhub.ts, external.ts); start-target.ts picks one from the config.
 */
import type { WatchedProcess } from '../resources.js'

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
  close(): Promise<void>
}

export class TargetUnavailable extends Error {
  readonly code = 'LOADTEST_TARGET_UNAVAILABLE'
}
