/**
 * The hub's one typed configuration: a JSON file (`--config`), then the environment, then flags;
 * frozen. Secrets come only from the environment (or the file), never from flags, so they never
 * show in `ps`. `parseHubConfig` is pure: it reads only its arguments.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { defaultUrlProblem } from '../../spawner/src/index.js'
import { HubError } from './errors.js'
import type { OidcConfig } from './auth/oidc-config.js'
import type { AuthenticatorEntry } from './auth/authenticator.js'
import { AUTHENTICATOR_FLAGS, AUTHENTICATOR_NAMES, AUTHENTICATORS, type AuthenticatorName } from './auth/authenticators.js'

export interface HubConfig {
  /** Public address of the proxy (JupyterHub `bind_url`). Default 127.0.0.1:8000. */
  readonly ip: string
  readonly port: number
  /** Where the hub itself listens (JupyterHub `hub_bind_url`). Default 127.0.0.1:8081. */
  readonly hubIp: string
  readonly hubPort: number
  /** How user servers and the proxy reach the hub (JupyterHub `hub_connect_url`). Default http://<hubIp>:<hubPort>. */
  readonly hubConnectUrl: string | undefined
  /** `child`: the hub runs the proxy (default); `external`: it talks to one at `proxyApiUrl` (ConfigurableHTTPProxy.should_start=False). */
  readonly proxy: 'child' | 'external'
  /** The proxy's REST API (ConfigurableHTTPProxy.api_url). Default http://127.0.0.1:8001. */
  readonly proxyApiUrl: string
  /** CONFIGPROXY_AUTH_TOKEN; random for a child proxy when unset. */
  readonly proxyAuthToken: string
  /**
   * How proxies get routes. `api`: the hub writes them through the CHP REST API (default; what
   * JupyterHub does). `db`: they live in Postgres and every proxy follows them (`fleethub proxy
   * --routes-from-db`); any number of proxies, none of them told anything by the hub.
   */
  readonly proxyRoutes: 'api' | 'db'
  /** Child proxy processes on the public port (`--proxies N`, node:cluster). Default 1; more needs `proxyRoutes: db` (implied). */
  readonly proxies: number
  /** DATABASE_URL; unset = the embedded Postgres under `dataDir`. */
  readonly databaseUrl: string | undefined
  /** Connections in the hub's Postgres pool (FLEETHUB_DB_POOL_SIZE; JupyterHub db_kwargs pool_size). Default 20. */
  readonly dbPoolSize: number
  /** Where the embedded database and local state live (FLEETHUB_DATA_DIR). Default `.fleethub`. */
  readonly dataDir: string
  /** Run migrations on start (`--no-migrate` to skip). */
  readonly migrate: boolean
  /** The development authenticator's shared password (FLEETHUB_DEV_PASSWORD); random when unset. */
  readonly devPassword: string
  readonly devPasswordGenerated: boolean
  /** How people sign in: a name in auth/authenticators.ts (`dev`, `native`, `oidc`). Default dev. */
  readonly authenticator: AuthenticatorName
  /** The OpenID Connect settings (auth/oidc-config.ts); set only with `authenticator: oidc`. */
  readonly oidc: OidcConfig | undefined
  /** Admin user names (JupyterHub Authenticator.admin_users; FLEETHUB_ADMIN_USERS=alice,bob). */
  readonly adminUsers: readonly string[]
  /** `local` (child processes, default) or `kubernetes`. */
  readonly spawner: 'local' | 'kubernetes'
  /** Command for local user servers; default jupyterhub-singleuser if installed, else the built-in server. */
  readonly singleuserCmd: readonly string[] | undefined
  /** Where `/user/<name>/` lands, e.g. `/lab` (Spawner.default_url; FLEETHUB_DEFAULT_URL); sent as JUPYTERHUB_DEFAULT_URL. Default: the server's own (Jupyter: /tree). */
  readonly defaultUrl: string | undefined
  /** JupyterHub concurrent_spawn_limit. Default 100. */
  readonly concurrentSpawnLimit: number
  /** Spawn requests waiting beyond the concurrency limit before 429. Default 2000. */
  readonly spawnQueueLimit: number
  /** JupyterHub active_server_limit; 0 = none. */
  readonly activeServerLimit: number
  /** Spawner.start_timeout, seconds. Default 60. */
  readonly startTimeout: number
  /** JupyterHub slow_stop_timeout: seconds `DELETE .../server` waits before answering 202 (the stop goes on). Default 10. */
  readonly slowStopTimeout: number
  /** Spawner.http_timeout, seconds. Default 30. */
  readonly httpTimeout: number
  /** Browser session lifetime, seconds (JupyterHub cookie_max_age_days). Default 14 days. */
  readonly sessionMaxAge: number
  /** JupyterHub last_activity_interval: route check + activity harvest, seconds. Default 300. */
  readonly lastActivityInterval: number
  /** Seconds between polls of every running server (JupyterHub Spawner.poll_interval). Default 30. */
  readonly pollInterval: number
  /** Hub processes behind the one hub port (node:cluster) [--workers, FLEETHUB_WORKERS]. Default 1. */
  readonly workers: number
  /** JupyterHub cleanup_servers: stop user servers on shutdown. Default true. */
  readonly cleanupServers: boolean
  /** Let users run named servers besides their default one (JupyterHub allow_named_servers). Default false. */
  readonly allowNamedServers: boolean
  /** Named servers per user; 0 = no limit (JupyterHub named_server_limit_per_user). */
  readonly namedServerLimitPerUser: number
  /** Custom roles (JupyterHub load_roles): `{name, scopes, users?}`; from the config file. */
  readonly roles: ReadonlyArray<{ readonly name: string; readonly scopes: readonly string[]; readonly users?: readonly string[] }>
  /** Services (JupyterHub services): `{name, roles, tokenEnv}`, the token read from that env var; from the config file. */
  readonly services: ReadonlyArray<{ readonly name: string; readonly roles: readonly string[]; readonly token: string | undefined }>
  /** Kubernetes spawner settings (namespace, image, resources, profiles, pvc, ...; see spawner/src/kube-config.ts); from the config file. */
  readonly kubernetes: Readonly<Record<string, unknown>>
  /** Extra environment for user servers (Spawner.environment); from the config file. */
  readonly environment: Readonly<Record<string, string>>
  readonly logLevel: string
  // The idle culler (hub/src/culler; jupyterhub-idle-culler's knobs in brackets).
  /** Stop idle servers from inside the hub (`--no-cull-idle` to leave it to an external culler). Default true. */
  readonly cullIdle: boolean
  /** Seconds without activity before a server is stopped [--timeout]. Default 3600. */
  readonly cullTimeout: number
  /** Seconds between cull sweeps [--cull-every]. Default 300. */
  readonly cullEvery: number
  /** Stop servers older than this many seconds even if active; 0 = never [--max-age]. Default 0. */
  readonly cullMaxAge: number
  /** Also delete users left without an active server and inactive past the timeout; never admins [--cull-users]. Default false. */
  readonly cullUsers: boolean
  /** Stops in flight at once during a sweep [--concurrency]. Default 10. */
  readonly cullConcurrency: number
  /** Cull admins' servers too [--cull-admin-users]. Default true. */
  readonly cullAdminUsers: boolean
  /** Delete culled named servers' records, not just stop them [--remove-named-servers]. Default false. */
  readonly cullRemoveNamedServers: boolean
}

const OPTIONS = {
  config: { type: 'string' },
  ip: { type: 'string' }, port: { type: 'string' },
  'hub-ip': { type: 'string' }, 'hub-port': { type: 'string' }, 'hub-connect-url': { type: 'string' },
  proxy: { type: 'string' }, 'proxy-api-url': { type: 'string' }, 'proxy-routes': { type: 'string' }, proxies: { type: 'string' },
  'data-dir': { type: 'string' }, migrate: { type: 'boolean' }, 'db-pool-size': { type: 'string' },
  'admin-users': { type: 'string' }, authenticator: { type: 'string' }, spawner: { type: 'string' }, 'singleuser-cmd': { type: 'string' },
  'default-url': { type: 'string' },
  'concurrent-spawn-limit': { type: 'string' }, 'spawn-queue-limit': { type: 'string' }, 'active-server-limit': { type: 'string' },
  'start-timeout': { type: 'string' }, 'http-timeout': { type: 'string' }, 'slow-stop-timeout': { type: 'string' }, 'session-max-age': { type: 'string' },
  'last-activity-interval': { type: 'string' }, 'poll-interval': { type: 'string' }, 'cleanup-servers': { type: 'boolean' },
  workers: { type: 'string' },
  'allow-named-servers': { type: 'boolean' }, 'named-server-limit-per-user': { type: 'string' },
  'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  'cull-idle': { type: 'boolean' }, 'cull-timeout': { type: 'string' }, 'cull-every': { type: 'string' }, 'cull-max-age': { type: 'string' },
  'cull-users': { type: 'boolean' }, 'cull-concurrency': { type: 'string' }, 'cull-admin-users': { type: 'boolean' }, 'cull-remove-named-servers': { type: 'boolean' },
} as const

export const HUB_HELP = `usage: fleethub start|hub [options]

  --config FILE               JSON config file (keys are the camelCase names below)
  --ip ADDR --port N          public proxy address (default 127.0.0.1:8000)
  --hub-ip ADDR --hub-port N  the hub's own address (default 127.0.0.1:8081)
  --hub-connect-url URL       how servers and the proxy reach the hub
  --proxy child|external      run the proxy as a child (default) or use one at --proxy-api-url
  --proxy-api-url URL         proxy REST API (default http://127.0.0.1:8001)
  --proxy-routes api|db       routes through the proxy's REST API (default, CHP-compatible) or in
                              Postgres, followed by every proxy (fleethub proxy --routes-from-db)
  --proxies N                 child proxy processes sharing the public port (default 1; N > 1
                              implies --proxy-routes db)
  --data-dir DIR              local state, incl. the embedded database (default .fleethub)
  --no-migrate                do not run database migrations on start
  --db-pool-size N            Postgres connections per hub (default 20; FLEETHUB_DB_POOL_SIZE)
  --admin-users a,b           admin user names
  --authenticator ${AUTHENTICATOR_NAMES.join('|')}  how people sign in (default dev):
${Object.values(AUTHENTICATORS).map((a: AuthenticatorEntry) => `                              ${a.help}\n`).join('')}  --spawner local|kubernetes  how user servers run (default local)
  --singleuser-cmd "CMD ARGS" command for local user servers
  --default-url PATH          where /user/<name>/ lands, e.g. /lab or /tree/home/{username}
                              (FLEETHUB_DEFAULT_URL; default: the server's own)
  --concurrent-spawn-limit N  spawns in flight at once (default 100)
  --spawn-queue-limit N       spawns allowed to wait before 429 (default 2000)
  --active-server-limit N     0 = unlimited (default)
  --start-timeout S --http-timeout S   spawner deadlines (default 60, 30)
  --slow-stop-timeout S       a stop through the API answers 202 after S seconds and goes on (default 10;
                              FLEETHUB_SLOW_STOP_TIMEOUT; 0 = answer at once)
  --session-max-age S         browser session lifetime (default 1209600)
  --last-activity-interval S  route check and activity harvest period (default 300)
  --poll-interval S           how often every running server is checked (default 30)
  --workers N                 hub processes behind the one hub port (FLEETHUB_WORKERS; default 1);
                              SIGHUP replaces them one at a time with fresh code and config
  --no-cleanup-servers        leave user servers running when the hub stops
  --allow-named-servers       let users run named servers (--named-server-limit-per-user N)
  --log-level LEVEL           trace|debug|info|warn|error (default info)

idle culler (stops servers with no activity; jupyterhub-idle-culler's options, run in the hub):
  --no-cull-idle              do not cull (e.g. when an external culler runs)
  --cull-timeout S            idle seconds before a server is stopped (default 3600)
  --cull-every S              seconds between sweeps (default 300)
  --cull-max-age S            stop servers older than this even if active; 0 = never (default 0)
  --cull-users                also delete users left idle with no server (never admins)
  --cull-concurrency N        stops in flight at once (default 10)
  --no-cull-admin-users       leave admins' servers running
  --cull-remove-named-servers delete culled named servers, not just stop them

${Object.values(AUTHENTICATORS).map((a: AuthenticatorEntry) => a.flagsHelp ?? '').join('')}
environment: DATABASE_URL, CONFIGPROXY_AUTH_TOKEN, FLEETHUB_DEV_PASSWORD, FLEETHUB_ADMIN_USERS,
             FLEETHUB_DATA_DIR, FLEETHUB_SPAWNER, FLEETHUB_DEFAULT_URL, KUBECONFIG, FLEETHUB_AUTHENTICATOR, FLEETHUB_OIDC_ISSUER,
             FLEETHUB_OIDC_CLIENT_ID, FLEETHUB_OIDC_CLIENT_SECRET, FLEETHUB_OIDC_STATE_SECRET
`

export class ConfigError extends HubError {
  constructor(message: string) {
    super('HUB_BAD_CONFIG', message)
    this.name = 'ConfigError'
  }
}

type Raw = Record<string, unknown>

export function parseHubConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, cwd = '.'): HubConfig & { help: boolean } {
  const problems: string[] = []
  let values: Raw
  try {
    values = parseArgs({ args: [...argv], options: { ...OPTIONS, ...AUTHENTICATOR_FLAGS }, allowNegative: true, strict: true }).values as Raw
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  let file: Raw = {}
  if (typeof values.config === 'string') {
    try {
      file = JSON.parse(fs.readFileSync(path.resolve(cwd, values.config), 'utf8')) as Raw
    } catch (err) {
      problems.push(`--config ${values.config}: ${(err as Error).message}`)
    }
  }
  const pick = (flag: string, envName: string | undefined, key: string): unknown =>
    values[flag] ?? (envName ? env[envName] : undefined) ?? file[key]
  const int = (flag: string, envName: string | undefined, key: string, def: number, min = 0, max = 1e9): number => {
    const v = pick(flag, envName, key)
    if (v === undefined || v === '') return def
    const n = typeof v === 'number' ? v : Number(v)
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`)
      return def
    }
    return n
  }
  const str = (flag: string, envName: string | undefined, key: string, def: string): string => {
    const v = pick(flag, envName, key)
    return v === undefined || v === '' ? def : String(v)
  }
  const oneOf = <T extends string>(flag: string, envName: string | undefined, key: string, choices: readonly T[], def: T): T => {
    const v = str(flag, envName, key, def)
    if (!choices.includes(v as T)) problems.push(`${flag}: expected one of ${choices.join(', ')}, got '${v}'`)
    return v as T
  }
  const list = (v: unknown): string[] => Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',').map(s => s.trim()).filter(Boolean) : []

  const port = int('port', undefined, 'port', 8000, 0, 65535)
  const hubPort = int('hub-port', undefined, 'hubPort', 8081, 0, 65535)
  const proxy = oneOf('proxy', undefined, 'proxy', ['child', 'external'] as const, 'child')
  const proxies = int('proxies', 'FLEETHUB_PROXIES', 'proxies', 1, 1, 64)
  const proxyRoutesGiven = pick('proxy-routes', 'FLEETHUB_PROXY_ROUTES', 'proxyRoutes') !== undefined
  const proxyRoutes = oneOf('proxy-routes', 'FLEETHUB_PROXY_ROUTES', 'proxyRoutes', ['api', 'db'] as const, proxies > 1 ? 'db' : 'api')
  if (proxies > 1 && proxyRoutes === 'api' && proxyRoutesGiven) problems.push('--proxies N > 1 needs --proxy-routes db: the REST API of one proxy process does not reach the others')
  if (proxies > 1 && proxy === 'external') problems.push('--proxies starts child proxies; with --proxy external run each `fleethub proxy --routes-from-db` yourself')
  const proxyAuthToken = env.CONFIGPROXY_AUTH_TOKEN ?? (typeof file.proxyAuthToken === 'string' ? file.proxyAuthToken : undefined)
  if (proxy === 'external' && !proxyAuthToken) problems.push('--proxy external needs CONFIGPROXY_AUTH_TOKEN')
  const devFromEnv = env.FLEETHUB_DEV_PASSWORD ?? (typeof file.devPassword === 'string' ? file.devPassword : undefined)
  const cmd = pick('singleuser-cmd', undefined, 'singleuserCmd')
  const defaultUrl = pick('default-url', 'FLEETHUB_DEFAULT_URL', 'defaultUrl')
  const defaultUrlBad = defaultUrl === undefined || defaultUrl === '' ? undefined : defaultUrlProblem(defaultUrl)
  if (defaultUrlBad) problems.push(`--default-url: ${defaultUrlBad}`)
  const environment = file.environment ?? {}
  if (typeof environment !== 'object' || environment === null || Object.values(environment).some(v => typeof v !== 'string')) {
    problems.push('environment: expected an object of strings')
  }
  const roles = parseRoles(file.roles, problems)
  const services = parseServices(file.services, env, problems)
  const authenticator = oneOf('authenticator', 'FLEETHUB_AUTHENTICATOR', 'authenticator', AUTHENTICATOR_NAMES, 'dev')
  const authOptions = (AUTHENTICATORS[authenticator] as AuthenticatorEntry | undefined)?.parseOptions?.(values, env, file, problems) ?? {}
  const config = {
    help: values.help === true,
    ip: str('ip', undefined, 'ip', '127.0.0.1'),
    port,
    hubIp: str('hub-ip', undefined, 'hubIp', '127.0.0.1'),
    hubPort,
    hubConnectUrl: pick('hub-connect-url', undefined, 'hubConnectUrl') as string | undefined,
    proxy,
    proxyApiUrl: str('proxy-api-url', undefined, 'proxyApiUrl', 'http://127.0.0.1:8001'),
    proxyAuthToken: proxyAuthToken ?? randomBytes(16).toString('hex'),
    proxyRoutes,
    proxies,
    databaseUrl: env.DATABASE_URL || (typeof file.databaseUrl === 'string' ? file.databaseUrl : undefined),
    dbPoolSize: int('db-pool-size', 'FLEETHUB_DB_POOL_SIZE', 'dbPoolSize', 20, 1, 1000),
    dataDir: path.resolve(cwd, str('data-dir', 'FLEETHUB_DATA_DIR', 'dataDir', '.fleethub')),
    migrate: (values.migrate ?? file.migrate ?? true) as boolean,
    devPassword: devFromEnv ?? randomBytes(9).toString('base64url'),
    devPasswordGenerated: devFromEnv === undefined,
    authenticator,
    oidc: authOptions.oidc,
    adminUsers: list(values['admin-users'] ?? env.FLEETHUB_ADMIN_USERS ?? file.adminUsers),
    spawner: oneOf('spawner', 'FLEETHUB_SPAWNER', 'spawner', ['local', 'kubernetes'] as const, 'local'),
    singleuserCmd: Array.isArray(cmd) ? cmd.map(String) : typeof cmd === 'string' ? cmd.split(/\s+/).filter(Boolean) : undefined,
    defaultUrl: defaultUrl === undefined || defaultUrl === '' || defaultUrlBad ? undefined : defaultUrl as string,
    concurrentSpawnLimit: int('concurrent-spawn-limit', undefined, 'concurrentSpawnLimit', 100, 1),
    spawnQueueLimit: int('spawn-queue-limit', undefined, 'spawnQueueLimit', 2000, 0),
    activeServerLimit: int('active-server-limit', undefined, 'activeServerLimit', 0, 0),
    startTimeout: int('start-timeout', undefined, 'startTimeout', 60, 1),
    httpTimeout: int('http-timeout', undefined, 'httpTimeout', 30, 1),
    slowStopTimeout: int('slow-stop-timeout', 'FLEETHUB_SLOW_STOP_TIMEOUT', 'slowStopTimeout', 10, 0, 3600),
    sessionMaxAge: int('session-max-age', undefined, 'sessionMaxAge', 14 * 24 * 3600, 60),
    lastActivityInterval: int('last-activity-interval', undefined, 'lastActivityInterval', 300, 1),
    pollInterval: int('poll-interval', undefined, 'pollInterval', 30, 1),
    workers: int('workers', 'FLEETHUB_WORKERS', 'workers', 1, 1, 64),
    cleanupServers: (values['cleanup-servers'] ?? file.cleanupServers ?? true) as boolean,
    environment: environment as Record<string, string>,
    kubernetes: (typeof file.kubernetes === 'object' && file.kubernetes !== null ? file.kubernetes : {}) as Record<string, unknown>,
    allowNamedServers: (values['allow-named-servers'] ?? file.allowNamedServers ?? false) as boolean,
    namedServerLimitPerUser: int('named-server-limit-per-user', undefined, 'namedServerLimitPerUser', 0, 0),
    roles,
    services,
    logLevel: oneOf('log-level', 'FLEETHUB_LOG_LEVEL', 'logLevel', ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    // idle culler
    cullIdle: (values['cull-idle'] ?? file.cullIdle ?? true) as boolean,
    cullTimeout: int('cull-timeout', undefined, 'cullTimeout', 3600, 1),
    cullEvery: int('cull-every', undefined, 'cullEvery', 300, 1),
    cullMaxAge: int('cull-max-age', undefined, 'cullMaxAge', 0, 0),
    cullUsers: (values['cull-users'] ?? file.cullUsers ?? false) as boolean,
    cullConcurrency: int('cull-concurrency', undefined, 'cullConcurrency', 10, 1, 1000),
    cullAdminUsers: (values['cull-admin-users'] ?? file.cullAdminUsers ?? true) as boolean,
    cullRemoveNamedServers: (values['cull-remove-named-servers'] ?? file.cullRemoveNamedServers ?? false) as boolean,
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`)
  return Object.freeze(config)
}

function parseRoles(raw: unknown, problems: string[]): HubConfig['roles'] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) { problems.push('roles: expected a list of {name, scopes, users?}'); return [] }
  return raw.flatMap((r, i) => {
    const ok = typeof r === 'object' && r !== null && typeof r.name === 'string' && Array.isArray(r.scopes) && r.scopes.every((s: unknown) => typeof s === 'string')
      && (r.users === undefined || (Array.isArray(r.users) && r.users.every((u: unknown) => typeof u === 'string')))
    if (!ok) { problems.push(`roles[${i}]: expected {name: string, scopes: string[], users?: string[]}`); return [] }
    return [{ name: r.name as string, scopes: r.scopes as string[], users: r.users as string[] | undefined }]
  })
}

function parseServices(raw: unknown, env: Readonly<Record<string, string | undefined>>, problems: string[]): HubConfig['services'] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) { problems.push('services: expected a list of {name, roles, tokenEnv}'); return [] }
  return raw.flatMap((s, i) => {
    const ok = typeof s === 'object' && s !== null && typeof s.name === 'string' && /^[a-zA-Z0-9._-]{1,64}$/.test(s.name)
      && Array.isArray(s.roles) && s.roles.every((r: unknown) => typeof r === 'string') && (s.tokenEnv === undefined || typeof s.tokenEnv === 'string')
    if (!ok) { problems.push(`services[${i}]: expected {name, roles: string[], tokenEnv?: string}`); return [] }
    const token = s.tokenEnv ? env[s.tokenEnv as string] : undefined
    if (s.tokenEnv && (!token || token.length < 16)) problems.push(`services[${i}] (${s.name}): env ${s.tokenEnv} must hold a token of at least 16 characters`)
    return [{ name: s.name as string, roles: s.roles as string[], token }]
  })
}
