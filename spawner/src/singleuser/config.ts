/**
 * Turns the `JUPYTERHUB_*` environment (contract §3) into the options of the built-in single-user
 * server. Pure: reads only the `env` it is given.
 */
import { defaultUrlProblem } from '../default-url.js'
import { configInvalid } from './errors.js'

/** The parsed single-user environment. */
export interface SingleUserConfig {
  /** JUPYTERHUB_USER */
  readonly user: string
  /** JUPYTERHUB_SERVER_NAME; '' for the default server. */
  readonly serverName: string
  /** JUPYTERHUB_SERVICE_PREFIX (else the path of JUPYTERHUB_SERVICE_URL), ends with '/'. */
  readonly prefix: string
  /** JUPYTERHUB_BASE_URL, default '/'; the hub prefix is this + 'hub/'. */
  readonly baseUrl: string
  /** JUPYTERHUB_API_URL, e.g. http://127.0.0.1:8081/hub/api (no trailing slash). */
  readonly apiUrl: string
  /** JUPYTERHUB_API_TOKEN (or the deprecated JPY_API_TOKEN); also the OAuth client secret. */
  readonly apiToken: string
  /** JUPYTERHUB_ACTIVITY_URL, default `<apiUrl>/users/<user>/activity`. */
  readonly activityUrl: string
  /** JUPYTERHUB_ACTIVITY_INTERVAL in ms, default 300 s; 0 disables the periodic reports. */
  readonly activityIntervalMs: number
  /** JUPYTERHUB_CLIENT_ID, e.g. `jupyterhub-user-alice`; also the name of the auth cookie. */
  readonly clientId: string
  /** JUPYTERHUB_OAUTH_CALLBACK_URL as given (sent as redirect_uri), e.g. `/user/alice/oauth_callback`. */
  readonly oauthCallbackUrl: string
  /** JUPYTERHUB_OAUTH_ACCESS_SCOPES (else the deprecated JUPYTERHUB_OAUTH_SCOPES), JSON list. */
  readonly accessScopes: readonly string[]
  /** Bind address from JUPYTERHUB_SERVICE_URL (default 127.0.0.1). */
  readonly host: string
  /** Bind port from JUPYTERHUB_SERVICE_URL (default 8888). */
  readonly port: number
  /** JUPYTERHUB_DEFAULT_URL, e.g. '/lab': `<prefix>` redirects to `<prefix>lab`. Default: none (the prefix shows the server page). */
  readonly defaultUrl?: string
}

const REQUIRED = ['JUPYTERHUB_USER', 'JUPYTERHUB_API_URL', 'JUPYTERHUB_CLIENT_ID', 'JUPYTERHUB_OAUTH_CALLBACK_URL'] as const

type Env = Readonly<Record<string, string | undefined>>

/** Parse the environment; throws one `SINGLEUSER_CONFIG_INVALID` error listing every problem. */
export function parseSingleUserConfig(env: Env): SingleUserConfig {
  const problems: string[] = []
  for (const name of REQUIRED) if (!env[name]) problems.push(`${name} is missing`)
  const apiToken = env.JUPYTERHUB_API_TOKEN || env.JPY_API_TOKEN || ''
  if (!apiToken) problems.push('JUPYTERHUB_API_TOKEN is missing')
  if (!env.JUPYTERHUB_SERVICE_URL && !env.JUPYTERHUB_SERVICE_PREFIX) {
    problems.push('JUPYTERHUB_SERVICE_URL is missing (and no JUPYTERHUB_SERVICE_PREFIX)')
  }
  const bind = parseServiceUrl(env.JUPYTERHUB_SERVICE_URL, problems)
  const apiUrl = parseHttpUrl('JUPYTERHUB_API_URL', env.JUPYTERHUB_API_URL, problems)?.replace(/\/+$/, '')
  const prefix = env.JUPYTERHUB_SERVICE_PREFIX || bind?.path || '/'
  if (!prefix.startsWith('/') || !prefix.endsWith('/')) problems.push(`JUPYTERHUB_SERVICE_PREFIX must start and end with '/': ${JSON.stringify(prefix)}`)
  const baseUrl = env.JUPYTERHUB_BASE_URL || '/'
  if (!baseUrl.startsWith('/') || !baseUrl.endsWith('/')) problems.push(`JUPYTERHUB_BASE_URL must start and end with '/': ${JSON.stringify(baseUrl)}`)
  const activityUrl = env.JUPYTERHUB_ACTIVITY_URL
    ? parseHttpUrl('JUPYTERHUB_ACTIVITY_URL', env.JUPYTERHUB_ACTIVITY_URL, problems)
    : apiUrl && env.JUPYTERHUB_USER ? `${apiUrl}/users/${encodeURIComponent(env.JUPYTERHUB_USER)}/activity` : undefined
  const intervalS = env.JUPYTERHUB_ACTIVITY_INTERVAL === undefined || env.JUPYTERHUB_ACTIVITY_INTERVAL === ''
    ? 300 : Number(env.JUPYTERHUB_ACTIVITY_INTERVAL)
  if (!Number.isFinite(intervalS) || intervalS < 0) problems.push(`JUPYTERHUB_ACTIVITY_INTERVAL must be a number of seconds >= 0: ${JSON.stringify(env.JUPYTERHUB_ACTIVITY_INTERVAL)}`)
  const accessScopes = parseScopes(env, problems)
  const defaultUrl = env.JUPYTERHUB_DEFAULT_URL || undefined
  const defaultUrlBad = defaultUrl === undefined ? undefined : defaultUrlProblem(defaultUrl, { template: false })
  if (defaultUrlBad) problems.push(`JUPYTERHUB_DEFAULT_URL: ${defaultUrlBad}`)
  if (problems.length > 0) throw configInvalid(problems)
  return Object.freeze({
    user: env.JUPYTERHUB_USER!, serverName: env.JUPYTERHUB_SERVER_NAME ?? '', prefix, baseUrl,
    apiUrl: apiUrl!, apiToken, activityUrl: activityUrl!, activityIntervalMs: Math.round(intervalS * 1000),
    clientId: env.JUPYTERHUB_CLIENT_ID!, oauthCallbackUrl: env.JUPYTERHUB_OAUTH_CALLBACK_URL!,
    accessScopes: Object.freeze(accessScopes), host: bind?.host ?? '127.0.0.1', port: bind?.port ?? 8888, defaultUrl,
  })
}

function parseHttpUrl(name: string, value: string | undefined, problems: string[]): string | undefined {
  if (!value) return undefined
  try {
    const url = new URL(value)
    if (url.protocol === 'http:' || url.protocol === 'https:') return value
  } catch { /* reported below */ }
  problems.push(`${name} must be an http(s) URL: ${JSON.stringify(value)}`)
  return undefined
}

function parseServiceUrl(value: string | undefined, problems: string[]): { host: string, port: number, path: string } | undefined {
  if (!parseHttpUrl('JUPYTERHUB_SERVICE_URL', value, problems)) return undefined
  const url = new URL(value!)
  // WHATWG URL keeps IPv6 hosts in brackets; listen() wants them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  return { host, port, path: url.pathname }
}

/** The default access scopes JupyterHub computes when the env does not say (spawner.py `_default_access_scopes`). */
function parseScopes(env: Env, problems: string[]): string[] {
  const raw = env.JUPYTERHUB_OAUTH_ACCESS_SCOPES || env.JUPYTERHUB_OAUTH_SCOPES
  if (!raw) {
    const user = env.JUPYTERHUB_USER ?? ''
    return [`access:servers!server=${user}/${env.JUPYTERHUB_SERVER_NAME ?? ''}`, `access:servers!user=${user}`]
  }
  try {
    const parsed: unknown = JSON.parse(raw)
    if (Array.isArray(parsed) && parsed.every(s => typeof s === 'string')) return parsed as string[]
  } catch { /* reported below */ }
  problems.push('JUPYTERHUB_OAUTH_ACCESS_SCOPES must be a JSON list of strings')
  return []
}
