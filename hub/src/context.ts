import type { Db } from './db.js'
import type { Logger } from '../../core/src/log.js'
import type { RequestAuth } from './auth/request-auth.js'
import type { Authenticator } from './auth/authenticator.js'
import type { SpawnManager } from './servers/spawn-manager.js'
import type { ActivityBuffer } from './servers/activity.js'
import type { ServerRoutes, RoutesApi } from './proxy/route-sync.js'
import type { HubMetrics } from './metrics.js'

/** Everything the request handlers use, built once by createHub and passed down. */
export interface HubContext {
  readonly db: Db
  readonly log: Logger
  readonly auth: RequestAuth
  readonly authenticator: Authenticator<HubContext>
  readonly spawns: SpawnManager
  readonly activity: ActivityBuffer
  readonly routes: ServerRoutes
  /** The proxy's REST client (GET /hub/api/proxy reads the live table). */
  readonly proxyRoutes: RoutesApi
  readonly settings: HubSettings
  readonly metrics: HubMetrics
  /**
   * Aborted when this hub drains (a rolling restart, a replica told to go): long-lived responses
   * (progress streams) end cleanly so that their clients reconnect to a hub that stays.
   */
  readonly draining?: AbortSignal
}

export interface HubSettings {
  /** Seconds a browser session lasts. */
  readonly sessionMaxAge: number
  readonly adminUsers: ReadonlySet<string>
  /** How long `GET /hub/spawn` waits for a quick spawn before showing the progress page, ms. */
  readonly spawnPageWaitMs: number
  /** How long the API waits before answering 202 instead of 201 (JupyterHub slow_spawn_timeout), ms. */
  readonly slowSpawnTimeoutMs: number
  /** How long `DELETE .../server` waits for the stop before answering 202 instead of 204 (JupyterHub slow_stop_timeout), ms. */
  readonly slowStopTimeoutMs: number
  readonly allowNamedServers: boolean
  /** 0 = no limit. */
  readonly namedServerLimitPerUser: number
  /** Services from config, for GET /hub/api/services. */
  readonly services: ReadonlyArray<{ readonly name: string; readonly roles: readonly string[] }>
  /** The spawner and authenticator kinds, for GET /hub/api/info. */
  readonly spawnerKind: string
}

/** The JupyterHub REST API version we implement; clients switch features on it. */
export const JUPYTERHUB_API_VERSION = '5.2.1'
