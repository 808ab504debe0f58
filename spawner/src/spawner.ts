/**
 * The contract between the hub and every way of running a user's server.
 *
 * A spawner knows nothing about the hub: it gets a `SpawnSpec` (who, which server, the environment
 * the single-user server needs) and returns where the server listens plus a JSON `state` that the
 * hub persists, so that a restarted hub (or another replica) can find and adopt the server again.
 */

/** JSON-safe values a spawner may persist in the hub's database. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export type SpawnerState = { [key: string]: JsonValue }

/** Everything a spawner needs to start one user server. */
export interface SpawnSpec {
  /** The user's name, as the hub knows it (already validated). */
  readonly user: string
  /** The server name; '' for the default server. */
  readonly serverName: string
  /** URL prefix the server is served under, e.g. `/user/alice/` (ends with '/'). */
  readonly prefix: string
  /**
   * The single-user environment from the contract (`JUPYTERHUB_*` variables and friends). The
   * spawner adds only what it owns (for example `JUPYTERHUB_SERVICE_URL`, which names the bind
   * address it chose) and must not drop anything.
   */
  readonly env: Readonly<Record<string, string>>
  /** Options the user picked (profile etc.), as sent to the API; `{}` when none. */
  readonly userOptions: Readonly<Record<string, JsonValue>>
}

/** A progress event as it appears on the hub's progress stream (contract §6). */
export interface SpawnProgress {
  /** 0-100 */
  readonly progress: number
  readonly message: string
  readonly html_message?: string
}

export interface StartOptions {
  /** Aborted when the hub gives up (start timeout, user cancelled, hub shutting down). */
  readonly signal: AbortSignal
  /** Report a progress event; cheap, synchronous, may be called any number of times. */
  readonly progress: (event: SpawnProgress) => void
  /**
   * Called as soon as the spawner has state worth persisting (e.g. a pid or pod name), before the
   * server is up, so that a hub that dies mid-start can still clean up.
   */
  readonly saveState?: (state: SpawnerState) => void
}

export interface StartResult {
  /** Where the server listens, without the prefix: `http://127.0.0.1:41234`. */
  readonly url: string
  /** What the hub must persist to find this server again (pid, pod name, ...). */
  readonly state: SpawnerState
}

/** What `poll` found. */
export type PollResult =
  | { readonly running: true }
  | { readonly running: false; readonly reason?: string; readonly exitCode?: number | null }

export interface Spawner {
  /** A short name stored with each server (`local`, `kubernetes`). */
  readonly kind: string
  /**
   * Start a server and resolve once the spawner considers it started (process alive / pod
   * running). The hub then checks it over HTTP before routing to it. Rejects with a `SpawnerError`
   * whose message is fit to show the user; on rejection nothing must be left running.
   */
  start(spec: SpawnSpec, options: StartOptions): Promise<StartResult>
  /** Stop the server described by `state`. Idempotent: stopping a gone server resolves. */
  stop(state: SpawnerState, spec: Pick<SpawnSpec, 'user' | 'serverName'>): Promise<void>
  /** Is the server described by `state` still running? Cheap (no per-call API storm). */
  poll(state: SpawnerState, spec: Pick<SpawnSpec, 'user' | 'serverName'>): Promise<PollResult>
  /** Release what the spawner holds (informers, timers). Does not stop user servers. */
  close(): Promise<void>
  /**
   * Optional: resolves once the spawner knows the world (the Kubernetes spawner: after its
   * informers' first LIST). poll/start wait for it themselves; a hub may await it before its
   * startup reconciliation to report readiness honestly.
   */
  ready?(): Promise<void>
  /**
   * Optional: servers this spawner runs that the hub has no row for (`known` = every server the
   * hub believes exists, any state). Spawners configured to (Kubernetes `deleteOrphans`) also
   * delete them. Call once after startup reconciliation.
   */
  findOrphans?(known: ReadonlyArray<{ user: string, serverName: string }>): Promise<Array<{ user: string, serverName: string, deleted: boolean }>>
}

/** A spawner failure with a stable code and a message fit for the user. */
export class SpawnerError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SpawnerError'
    this.code = code
  }
}
