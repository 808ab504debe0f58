import { parseArgs } from 'node:util'
import { configInvalid } from './errors.js'
import { LOG_LEVELS, type LogLevel } from './log.js'

/** TLS material for a listener, as file paths (server.ts reads them; parsing stays pure). */
export interface TlsFiles {
  readonly key: string
  readonly cert: string
  /** CA bundle for client certificates (`--ssl-ca`). Default none. */
  readonly ca: string | undefined
  /** Ask clients for a certificate (`--ssl-request-cert`). Default false. */
  readonly requestCert: boolean
  /** Reject clients without a valid certificate (`--ssl-reject-unauthorized`). Default false. */
  readonly rejectUnauthorized: boolean
  readonly ciphers: string | undefined
  readonly secureProtocol: string | undefined
  readonly dhparam: string | undefined
}

/** Client certificate for https upstreams (`--client-ssl-*`). */
export interface ClientTlsFiles {
  readonly key: string | undefined
  readonly cert: string | undefined
  readonly ca: string | undefined
}

/** The whole proxy configuration: CHP 5.3's flags plus fleethub's extensions, frozen. */
export interface ProxyConfig {
  /** Public bind address (`--ip`); '' = all interfaces, CHP's default. */
  readonly ip: string
  /** Public port (`--port`), default 8000; 0 = ephemeral (fleethub). */
  readonly port: number
  /** API bind address (`--api-ip`), default 'localhost'. */
  readonly apiIp: string
  /** API port (`--api-port`), default port+1 (8001 when --port 0 is not given). 0 = ephemeral. */
  readonly apiPort: number
  /** From CONFIGPROXY_AUTH_TOKEN only; undefined = API open (CHP behaviour, warned at start). */
  readonly authToken: string | undefined
  /** Target of the `/` route added at start (`--default-target`). */
  readonly defaultTarget: string | undefined
  /** `--error-target`, always ending with '/'. */
  readonly errorTarget: string | undefined
  /** `--error-path`: folder with `<code>.html` / `error.html`. */
  readonly errorPath: string | undefined
  readonly logLevel: LogLevel
  /** `--timeout` ms: client request socket timeout. Default none. */
  readonly timeoutMs: number | undefined
  /** `--proxy-timeout` ms: no upstream response within this -> 503. Default none. */
  readonly proxyTimeoutMs: number | undefined
  /** `--keep-alive-timeout` ms for client connections, default 5000. */
  readonly keepAliveTimeoutMs: number
  /** `--host-routing`: the Host header is the first path segment. Default false. */
  readonly hostRouting: boolean
  /** false with `--no-include-prefix`: strip the matched prefix before forwarding. Default true. */
  readonly includePrefix: boolean
  /** false with `--no-prepend-path`: ignore the target's own path. Default true. */
  readonly prependPath: boolean
  /** false with `--no-x-forward`: do not add x-forwarded-* headers. Default true. */
  readonly xForward: boolean
  /** `--auto-rewrite`, `--change-origin`, `--protocol-rewrite`: passed to the forwarding library. */
  readonly autoRewrite: boolean
  readonly changeOrigin: boolean
  readonly protocolRewrite: string | undefined
  /** `--custom-header k:v` (repeatable): extra headers sent upstream. */
  readonly customHeaders: Readonly<Record<string, string>>
  /** `--insecure`: do not verify https upstream certificates. Default false. */
  readonly insecure: boolean
  readonly ssl: TlsFiles | undefined
  readonly apiSsl: TlsFiles | undefined
  readonly clientSsl: ClientTlsFiles | undefined
  /** `--redirect-port`: plain http listener redirecting to https; `--redirect-to` the port to redirect to (default port). */
  readonly redirectPort: number | undefined
  readonly redirectTo: number | undefined
  readonly pidFile: string | undefined
  /** fleethub: write {"port","apiPort","pid","bootId"} here once both servers listen. */
  readonly readyFile: string | undefined
  /** fleethub: close a websocket whose client sent nothing for this long (ms, 0 = never). Default 600000. */
  readonly wsIdleTimeoutMs: number
  /**
   * fleethub: upstream keep-alive pool, per upstream host. Defaults 256 / 256 / 4000 ms. Free sockets
   * must cover the concurrency per upstream, or sockets churn (seen in a profile: 6% of CPU in
   * connect/close with 50 clients and 32 free sockets); the free-socket timeout bounds them instead.
   */
  readonly maxUpstreamSockets: number
  /**
   * fleethub: the public port's listen backlog (connections the kernel completes before the proxy
   * accepts them; capped by net.core.somaxconn). Default 4096. Node's own 511 was full (512 seen
   * in the accept queue) when a campus wave of 200 users arrived within a second at 5,000 users
   * (issue #16): past it the kernel drops the handshake and the client waits a 1 s retransmit.
   */
  readonly listenBacklog: number
  readonly maxFreeUpstreamSockets: number
  readonly upstreamFreeSocketTimeoutMs: number
  /** fleethub: idle keep-alive sockets to the hub's route (`data.hub`) close after this. Default 60000. */
  readonly hubFreeSocketTimeoutMs: number
  /** fleethub: one info line per proxied request (`--access-log`). Default false (debug only). */
  readonly accessLog: boolean
  /** `--metrics-ip/--metrics-port`: CHP's separate metrics listener (also served on the API port). */
  readonly metricsIp: string
  readonly metricsPort: number | undefined
  /**
   * fleethub: `--routes-from-db`: routes come from Postgres (route-store.ts), the REST API only reads.
   * The database: DATABASE_URL, else the embedded Postgres under `--data-dir` (FLEETHUB_DATA_DIR,
   * default .fleethub), as for the hub.
   */
  readonly routesFromDb: { readonly databaseUrl: string | undefined, readonly dataDir: string } | undefined
  /** fleethub: route activity is written to the database this often (ms, route-store mode). Default 1000. */
  readonly activityFlushMs: number
  /** fleethub: a route in steady use is written again once its activity moved this far (ms, route-store mode). Default 60000. */
  readonly activityResolutionMs: number
  /** fleethub: `--workers N`: N proxy processes share the ports (node:cluster). Default 1. */
  readonly workers: number
}

const OPTIONS = {
  ip: { type: 'string' },
  port: { type: 'string' },
  'api-ip': { type: 'string' },
  'api-port': { type: 'string' },
  'default-target': { type: 'string' },
  'error-target': { type: 'string' },
  'error-path': { type: 'string' },
  'log-level': { type: 'string' },
  timeout: { type: 'string' },
  'proxy-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
  'host-routing': { type: 'boolean' },
  'include-prefix': { type: 'boolean' },
  'prepend-path': { type: 'boolean' },
  'x-forward': { type: 'boolean' },
  'auto-rewrite': { type: 'boolean' },
  'change-origin': { type: 'boolean' },
  'protocol-rewrite': { type: 'string' },
  'custom-header': { type: 'string', multiple: true },
  insecure: { type: 'boolean' },
  'ssl-key': { type: 'string' }, 'ssl-cert': { type: 'string' }, 'ssl-ca': { type: 'string' },
  'ssl-request-cert': { type: 'boolean' }, 'ssl-reject-unauthorized': { type: 'boolean' },
  'ssl-protocol': { type: 'string' }, 'ssl-ciphers': { type: 'string' }, 'ssl-allow-rc4': { type: 'boolean' },
  'ssl-dhparam': { type: 'string' },
  'api-ssl-key': { type: 'string' }, 'api-ssl-cert': { type: 'string' }, 'api-ssl-ca': { type: 'string' },
  'api-ssl-request-cert': { type: 'boolean' }, 'api-ssl-reject-unauthorized': { type: 'boolean' },
  'client-ssl-key': { type: 'string' }, 'client-ssl-cert': { type: 'string' }, 'client-ssl-ca': { type: 'string' },
  'client-ssl-request-cert': { type: 'boolean' }, 'client-ssl-reject-unauthorized': { type: 'boolean' },
  'redirect-port': { type: 'string' },
  'redirect-to': { type: 'string' },
  'pid-file': { type: 'string' },
  'ready-file': { type: 'string' },
  'ws-idle-timeout': { type: 'string' },
  'max-upstream-sockets': { type: 'string' },
  'listen-backlog': { type: 'string' },
  'max-free-upstream-sockets': { type: 'string' },
  'upstream-free-socket-timeout': { type: 'string' },
  'hub-free-socket-timeout': { type: 'string' },
  'access-log': { type: 'boolean' },
  'metrics-ip': { type: 'string' },
  'metrics-port': { type: 'string' },
  'routes-from-db': { type: 'boolean' },
  'data-dir': { type: 'string' },
  'activity-flush-interval': { type: 'string' },
  'activity-resolution': { type: 'string' },
  workers: { type: 'string' },
  // CHP flags we parse only to reject them with a clear reason.
  socket: { type: 'string' }, 'api-socket': { type: 'string' }, 'metrics-socket': { type: 'string' },
  'storage-backend': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const UNSUPPORTED: Readonly<Record<string, string>> = {
  socket: '--socket (unix socket listener) is not supported; use --ip/--port',
  'api-socket': '--api-socket (unix socket listener) is not supported; use --api-ip/--api-port',
  'metrics-socket': '--metrics-socket is not supported; metrics are served on the API port at /metrics',
  'storage-backend': '--storage-backend is not supported: routes live in memory (the hub restores them with PUT /api/routes), or in Postgres with --routes-from-db',
  'ssl-allow-rc4': '--ssl-allow-rc4 is not supported: RC4 is broken and disabled in Node',
}

export const USAGE = `usage: fleethub-proxy [options]   (CHP 5.3 compatible; token in CONFIGPROXY_AUTH_TOKEN)

  --ip IP                     public bind address (default: all interfaces)
  --port N                    public port (default 8000; 0 = ephemeral)
  --api-ip IP                 API bind address (default localhost)
  --api-port N                API port (default port+1; 0 = ephemeral)
  --default-target URL        target of the '/' route
  --error-target URL          fetch error pages from URL/<code>?url=<path>
  --error-path DIR            serve DIR/<code>.html or DIR/error.html on errors
  --log-level LEVEL           debug|info|warn|error|silent (default info)
  --timeout MS                client request timeout
  --proxy-timeout MS          upstream response timeout (-> 503)
  --keep-alive-timeout MS     client keep-alive timeout (default 5000)
  --host-routing              route on the Host header as first path segment
  --no-include-prefix         strip the matched route prefix before forwarding
  --no-prepend-path           ignore the target URL's path
  --no-x-forward              do not add x-forwarded-* headers
  --auto-rewrite --change-origin --protocol-rewrite P --custom-header K:V --insecure
  --ssl-key F --ssl-cert F [--ssl-ca F --ssl-request-cert --ssl-reject-unauthorized
        --ssl-protocol P --ssl-ciphers C --ssl-dhparam F]        https on the public port
  --api-ssl-key F --api-ssl-cert F [--api-ssl-ca F ...]        https on the API port
  --client-ssl-key F --client-ssl-cert F --client-ssl-ca F     client cert for https upstreams
  --redirect-port N [--redirect-to N]   plain-http listener redirecting to https
  --pid-file F                write the pid to F
  --metrics-ip IP --metrics-port N      extra Prometheus listener (also on the API port: /metrics)
fleethub extensions:
  --ready-file F              once listening, atomically write {"port","apiPort","pid","bootId"} to F
  --ws-idle-timeout MS        close websockets whose client sent nothing for MS (default 600000, 0 = never)
  --max-upstream-sockets N    per-upstream socket limit (default 256)
  --listen-backlog N          the public port's listen backlog (default 4096, capped by net.core.somaxconn)
  --max-free-upstream-sockets N   idle keep-alive sockets kept per upstream (default 256)
  --upstream-free-socket-timeout MS  close idle upstream sockets after MS (default 4000)
  --hub-free-socket-timeout MS  the same for the hub's route (default 60000; keep it under the hub's
                              own keep-alive timeout, 65 s for fleethub)
  --access-log                log every proxied request at info
  --routes-from-db            route-store mode: load routes from Postgres and follow its changes
                              (DATABASE_URL, else the embedded database under --data-dir); the API
                              only reads (writes answer 409); activity is written to the database
  --data-dir DIR              the hub's data dir, for its embedded database (default .fleethub)
  --activity-flush-interval MS  route-store mode: write route activity this often (default 1000)
  --activity-resolution MS    route-store mode: a route in steady use is written again once its
                              activity moved MS past the last write (default 60000; keep the hub's
                              cull timeout above it); new activity after a load is written at once
  --workers N                 N proxy processes on the same ports (default 1)
`

type Values = ReturnType<typeof parseRaw>['values']

function parseRaw(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowNegative: true, strict: true, allowPositionals: false })
}

/** Thrown for `--help`: main prints USAGE. */
export class HelpRequested extends Error {}

/**
 * Parse CHP-style argv and env into one frozen config, or throw a PROXY_CONFIG_INVALID ProxyError listing
 * every problem. Pure: reads no files, touches no globals.
 */
export function parseProxyConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ProxyConfig {
  let values: Values
  try {
    values = parseRaw(argv).values
  } catch (err) {
    throw configInvalid([(err as Error).message])
  }
  if (values.help === true) throw new HelpRequested('help')
  const problems: string[] = []
  const num = (flag: keyof Values, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number | undefined => {
    const raw = values[flag]
    if (raw === undefined) return undefined
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`--${flag} must be an integer in [${min}, ${max}], got '${String(raw)}'`)
      return undefined
    }
    return Number(raw)
  }
  for (const [flag, why] of Object.entries(UNSUPPORTED)) {
    if (values[flag as keyof Values] !== undefined) problems.push(why)
  }
  const port = num('port', { max: 65535 }) ?? 8000
  const apiPort = num('api-port', { max: 65535 }) ?? (values.port !== undefined && port === 0 ? 0 : port + 1)
  if (port !== 0 && apiPort === port) problems.push(`--port and --api-port must differ (both ${port})`)
  const logLevel = (values['log-level'] ?? 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`--log-level must be one of ${LOG_LEVELS.join('|')}, got '${logLevel}'`)
  const defaultTarget = checkUrl(values['default-target'], '--default-target', problems)
  const errorTargetRaw = checkUrl(values['error-target'], '--error-target', problems)
  const errorTarget = errorTargetRaw === undefined ? undefined : errorTargetRaw.endsWith('/') ? errorTargetRaw : `${errorTargetRaw}/`
  if (errorTarget !== undefined && values['error-path'] !== undefined) problems.push('--error-target and --error-path are exclusive; give one')
  const ssl = tlsFiles(values, 'ssl', problems)
  const apiSsl = tlsFiles(values, 'api-ssl', problems)
  const redirectPort = num('redirect-port', { max: 65535 })
  const redirectTo = num('redirect-to', { min: 1, max: 65535 })
  if (redirectPort !== undefined && ssl === undefined) problems.push('--redirect-port redirects to https and needs --ssl-key/--ssl-cert')
  if (redirectTo !== undefined && redirectPort === undefined) problems.push('--redirect-to needs --redirect-port')
  const customHeaders = parseHeaders(values['custom-header'] ?? [], problems)
  const clientSsl = values['client-ssl-key'] ?? values['client-ssl-cert'] ?? values['client-ssl-ca']
  if ((values['client-ssl-key'] === undefined) !== (values['client-ssl-cert'] === undefined)) {
    problems.push('--client-ssl-key and --client-ssl-cert go together')
  }
  const config: ProxyConfig = {
    ip: values.ip === '*' ? '' : values.ip ?? '',
    port,
    apiIp: values['api-ip'] ?? 'localhost',
    apiPort,
    authToken: env.CONFIGPROXY_AUTH_TOKEN === '' ? undefined : env.CONFIGPROXY_AUTH_TOKEN,
    defaultTarget,
    errorTarget,
    errorPath: values['error-path'],
    logLevel,
    timeoutMs: num('timeout'),
    proxyTimeoutMs: num('proxy-timeout'),
    keepAliveTimeoutMs: num('keep-alive-timeout') ?? 5000,
    hostRouting: values['host-routing'] ?? false,
    includePrefix: values['include-prefix'] ?? true,
    prependPath: values['prepend-path'] ?? true,
    xForward: values['x-forward'] ?? true,
    autoRewrite: values['auto-rewrite'] ?? false,
    changeOrigin: values['change-origin'] ?? false,
    protocolRewrite: values['protocol-rewrite'],
    customHeaders,
    insecure: values.insecure ?? false,
    ssl,
    apiSsl,
    clientSsl: clientSsl === undefined ? undefined
      : Object.freeze({ key: values['client-ssl-key'], cert: values['client-ssl-cert'], ca: values['client-ssl-ca'] }),
    redirectPort,
    redirectTo,
    pidFile: values['pid-file'],
    readyFile: values['ready-file'],
    wsIdleTimeoutMs: num('ws-idle-timeout') ?? 600_000,
    maxUpstreamSockets: num('max-upstream-sockets', { min: 1 }) ?? 256,
    listenBacklog: num('listen-backlog', { min: 1 }) ?? 4096,
    maxFreeUpstreamSockets: num('max-free-upstream-sockets') ?? 256,
    upstreamFreeSocketTimeoutMs: num('upstream-free-socket-timeout', { min: 1 }) ?? 4000,
    hubFreeSocketTimeoutMs: num('hub-free-socket-timeout', { min: 1 }) ?? 60_000,
    accessLog: values['access-log'] ?? false,
    metricsIp: values['metrics-ip'] ?? '',
    metricsPort: num('metrics-port', { max: 65535 }),
    routesFromDb: values['routes-from-db'] === true
      ? Object.freeze({ databaseUrl: env.DATABASE_URL || undefined, dataDir: values['data-dir'] ?? (env.FLEETHUB_DATA_DIR || '.fleethub') })
      : undefined,
    activityFlushMs: num('activity-flush-interval', { min: 10, max: 3_600_000 }) ?? 1000,
    activityResolutionMs: num('activity-resolution', { min: 0, max: 3_600_000 }) ?? 60_000,
    workers: num('workers', { min: 1, max: 64 }) ?? 1,
  }
  if (values['routes-from-db'] !== true) {
    if (config.workers > 1) problems.push('--workers N needs --routes-from-db: each worker has its own table, and only the database can fill them all')
    if (values['data-dir'] !== undefined) problems.push('--data-dir is for --routes-from-db')
    if (values['activity-flush-interval'] !== undefined) problems.push('--activity-flush-interval is for --routes-from-db')
    if (values['activity-resolution'] !== undefined) problems.push('--activity-resolution is for --routes-from-db')
  }
  if (problems.length > 0) throw configInvalid(problems)
  return Object.freeze(config)
}

function checkUrl(raw: string | undefined, flag: string, problems: string[]): string | undefined {
  if (raw === undefined) return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    problems.push(`${flag} must be an absolute http(s) URL, got '${raw}'`)
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`${flag} must be http or https, got '${raw}'`)
  return raw
}

function tlsFiles(values: Values, prefix: 'ssl' | 'api-ssl', problems: string[]): TlsFiles | undefined {
  const v = values as Record<string, string | boolean | undefined>
  const key = v[`${prefix}-key`] as string | undefined
  const cert = v[`${prefix}-cert`] as string | undefined
  const others = ['ca', 'request-cert', 'reject-unauthorized', 'protocol', 'ciphers', 'dhparam']
    .filter(name => v[`${prefix}-${name}`] !== undefined)
  if (key === undefined && cert === undefined) {
    if (others.length > 0) problems.push(`--${prefix}-${others[0]} needs --${prefix}-key and --${prefix}-cert`)
    return undefined
  }
  if (key === undefined || cert === undefined) {
    problems.push(`--${prefix}-key and --${prefix}-cert go together`)
    return undefined
  }
  return Object.freeze({
    key,
    cert,
    ca: v[`${prefix}-ca`] as string | undefined,
    requestCert: (v[`${prefix}-request-cert`] as boolean | undefined) ?? false,
    rejectUnauthorized: (v[`${prefix}-reject-unauthorized`] as boolean | undefined) ?? false,
    ciphers: v[`${prefix}-ciphers`] as string | undefined,
    secureProtocol: v[`${prefix}-protocol`] as string | undefined,
    dhparam: v[`${prefix}-dhparam`] as string | undefined,
  })
}

function parseHeaders(raw: readonly string[], problems: string[]): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  for (const item of raw) {
    const colon = item.indexOf(':')
    const name = colon > 0 ? item.slice(0, colon).trim() : ''
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      problems.push(`--custom-header must be 'name: value', got '${item}'`)
      continue
    }
    headers[name.toLowerCase()] = item.slice(colon + 1).trim()
  }
  return Object.freeze(headers)
}
