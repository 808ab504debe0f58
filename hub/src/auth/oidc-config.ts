/**
 * Settings of the OpenID Connect authenticator (`authenticator: oidc`), parsed from the config
 * file's `oidc` object, then FLEETHUB_OIDC_* env, then --oidc-* flags (the later wins, as for every
 * other hub setting). The client secret comes only from the environment or the file, never a flag.
 * Pure: reads only its arguments; problems are appended to `problems`, the caller throws once.
 */
import { isIP } from 'node:net'

export interface OidcConfig {
  /** The provider's issuer URL; discovery reads <issuer>/.well-known/openid-configuration. Required. */
  readonly issuer: string
  /** The hub's client id at the provider. Required. */
  readonly clientId: string
  /** FLEETHUB_OIDC_CLIENT_SECRET (or the file); unset = a public client (PKCE only). Never logged. */
  readonly clientSecret: string | undefined
  /** Where the provider sends the browser back; default <public url>/hub/oauth_callback (decided at start). */
  readonly redirectUrl: string | undefined
  /** Default `openid profile email`. */
  readonly scopes: readonly string[]
  /** Claim (dotted path allowed) that holds the username. Default `preferred_username`. */
  readonly usernameClaim: string
  /** Lowercase the username (JupyterHub does). Default true; hub usernames are lowercase only. */
  readonly normalizeUsername: boolean
  /** If set (e.g. `uni.edu`), `alice@uni.edu` becomes `alice` and names in any other domain are refused. */
  readonly usernameDomain: string | undefined
  /** Usernames allowed to sign in. */
  readonly allowedUsers: readonly string[]
  /** Groups (from `groupsClaim`) whose members may sign in. */
  readonly allowedGroups: readonly string[]
  /** Claim (dotted path allowed, e.g. `realm_access.roles`) holding the user's groups. Default `groups`. */
  readonly groupsClaim: string
  /** Members are admins; when set, admin status follows the groups at every sign-in (granted and revoked). */
  readonly adminGroups: readonly string[]
  /** Anyone the provider authenticates may sign in. Default false: say who, or nobody can. */
  readonly allowAll: boolean
  /** Shown on the button: "Sign in with <providerName>". Default `OpenID Connect`. */
  readonly providerName: string
  /** Skip the login page and go straight to the provider (JupyterHub auto_login). Default false. */
  readonly autoLogin: boolean
  /** Development only: accept an http:// issuer, and only on a loopback address. Default false. */
  readonly allowInsecureHttp: boolean
  /** Signs the short-lived state cookie (FLEETHUB_OIDC_STATE_SECRET); random per process when unset, so set it when several hub replicas share logins. */
  readonly stateSecret: string | undefined
}

/** Seconds a started sign-in stays valid (time to type a password and pass MFA at the provider). */
export const STATE_MAX_AGE = 600

type Raw = Record<string, unknown>
type Env = Readonly<Record<string, string | undefined>>

/** The --oidc-* flags, merged into the hub's parseArgs options. */
export const OIDC_FLAGS = {
  'oidc-issuer': { type: 'string' }, 'oidc-client-id': { type: 'string' }, 'oidc-redirect-url': { type: 'string' },
  'oidc-scopes': { type: 'string' }, 'oidc-username-claim': { type: 'string' }, 'oidc-normalize-username': { type: 'boolean' },
  'oidc-username-domain': { type: 'string' }, 'oidc-allowed-users': { type: 'string' }, 'oidc-allowed-groups': { type: 'string' },
  'oidc-groups-claim': { type: 'string' }, 'oidc-admin-groups': { type: 'string' }, 'oidc-allow-all': { type: 'boolean' },
  'oidc-provider-name': { type: 'string' }, 'oidc-auto-login': { type: 'boolean' }, 'oidc-allow-insecure-http': { type: 'boolean' },
} as const

export const OIDC_HELP = `OpenID Connect (--authenticator oidc; file key "oidc" holds the same camelCase names):
  --oidc-issuer URL            the provider's issuer (FLEETHUB_OIDC_ISSUER)
  --oidc-client-id ID          the hub's client id (FLEETHUB_OIDC_CLIENT_ID); secret: FLEETHUB_OIDC_CLIENT_SECRET
  --oidc-redirect-url URL      default <public url>/hub/oauth_callback
  --oidc-scopes "a b"          default "openid profile email"
  --oidc-username-claim C      default preferred_username (dotted paths allowed)
  --no-oidc-normalize-username keep the claim's case (hub names must still be lowercase)
  --oidc-username-domain D     strip @D from usernames, refuse other domains
  --oidc-allowed-users a,b     --oidc-allowed-groups g,h   --oidc-allow-all
  --oidc-groups-claim C        default groups;  --oidc-admin-groups g  members become admins
  --oidc-provider-name NAME    "Sign in with NAME";  --oidc-auto-login  skip the login page
  --oidc-allow-insecure-http   development only: an http:// issuer on a loopback address
`

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1'])

export function isLoopbackHost(hostname: string): boolean {
  if (LOOPBACK_NAMES.has(hostname)) return true
  return isIP(hostname) === 4 && hostname.startsWith('127.')
}

const CLAIM_PATH = /^[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*$/

function checkUrl(name: string, value: string, allowHttp: boolean, problems: string[]): void {
  let u: URL
  try { u = new URL(value) } catch { problems.push(`${name}: not a URL: '${value}'`); return }
  if (u.protocol === 'https:') return
  if (u.protocol !== 'http:') { problems.push(`${name}: expected an https:// URL, got '${value}'`); return }
  if (!allowHttp) problems.push(`${name}: '${value}' is plain http; use https (oidc.allowInsecureHttp is for local development only)`)
  else if (!isLoopbackHost(u.hostname)) problems.push(`${name}: plain http is allowed only on a loopback address (127.0.0.1, ::1, localhost), not '${u.hostname}'`)
}

export function parseOidcConfig(flags: Readonly<Raw>, env: Env, fileValue: unknown, problems: string[]): OidcConfig | undefined {
  if (fileValue !== undefined && (typeof fileValue !== 'object' || fileValue === null || Array.isArray(fileValue))) {
    problems.push('oidc: expected an object'); return undefined
  }
  const file = (fileValue ?? {}) as Raw
  const pick = (flag: string, envName: string | undefined, key: string): unknown =>
    flags[flag] ?? (envName ? env[envName] : undefined) ?? file[key]
  const str = (flag: string, envName: string | undefined, key: string): string | undefined => {
    const v = pick(flag, envName, key)
    if (v === undefined || v === '') return undefined
    if (typeof v !== 'string') { problems.push(`oidc.${key}: expected a string`); return undefined }
    return v.trim()
  }
  const bool = (flag: string, key: string, def: boolean): boolean => {
    const v = flags[flag] ?? file[key]
    if (v === undefined) return def
    if (typeof v !== 'boolean') { problems.push(`oidc.${key}: expected true or false`); return def }
    return v
  }
  const list = (flag: string, key: string, split: RegExp): string[] => {
    const v = pick(flag, undefined, key)
    if (v === undefined) return []
    if (Array.isArray(v) && v.every(x => typeof x === 'string')) return v.map(x => x.trim()).filter(Boolean)
    if (typeof v === 'string') return v.split(split).map(s => s.trim()).filter(Boolean)
    problems.push(`oidc.${key}: expected a list of strings`); return []
  }
  const claim = (flag: string, key: string, def: string): string => {
    const v = str(flag, undefined, key) ?? def
    if (!CLAIM_PATH.test(v)) problems.push(`oidc.${key}: '${v}' is not a claim name (letters, digits, _ : / -, dots between path parts)`)
    return v
  }

  const allowInsecureHttp = bool('oidc-allow-insecure-http', 'allowInsecureHttp', false)
  const issuer = str('oidc-issuer', 'FLEETHUB_OIDC_ISSUER', 'issuer')
  if (!issuer) problems.push('oidc.issuer: required with --authenticator oidc (--oidc-issuer or FLEETHUB_OIDC_ISSUER)')
  else checkUrl('oidc.issuer', issuer, allowInsecureHttp, problems)
  const clientId = str('oidc-client-id', 'FLEETHUB_OIDC_CLIENT_ID', 'clientId')
  if (!clientId) problems.push('oidc.clientId: required with --authenticator oidc (--oidc-client-id or FLEETHUB_OIDC_CLIENT_ID)')
  const redirectUrl = str('oidc-redirect-url', undefined, 'redirectUrl')
  if (redirectUrl) checkUrl('oidc.redirectUrl', redirectUrl, allowInsecureHttp, problems)
  const scopes = list('oidc-scopes', 'scopes', /[\s,]+/)
  if (scopes.length > 0 && !scopes.includes('openid')) problems.push(`oidc.scopes: must include 'openid', got '${scopes.join(' ')}'`)
  const usernameDomain = str('oidc-username-domain', undefined, 'usernameDomain')?.replace(/^@/, '').toLowerCase()
  const stateSecret = env.FLEETHUB_OIDC_STATE_SECRET ?? (typeof file.stateSecret === 'string' ? file.stateSecret : undefined)
  if (stateSecret !== undefined && stateSecret.length < 16) problems.push('FLEETHUB_OIDC_STATE_SECRET: at least 16 characters')

  const config: OidcConfig = {
    issuer: issuer ?? '',
    clientId: clientId ?? '',
    clientSecret: env.FLEETHUB_OIDC_CLIENT_SECRET || (typeof file.clientSecret === 'string' && file.clientSecret !== '' ? file.clientSecret : undefined),
    redirectUrl,
    scopes: scopes.length > 0 ? scopes : ['openid', 'profile', 'email'],
    usernameClaim: claim('oidc-username-claim', 'usernameClaim', 'preferred_username'),
    normalizeUsername: bool('oidc-normalize-username', 'normalizeUsername', true),
    usernameDomain,
    allowedUsers: list('oidc-allowed-users', 'allowedUsers', /,/),
    allowedGroups: list('oidc-allowed-groups', 'allowedGroups', /,/),
    groupsClaim: claim('oidc-groups-claim', 'groupsClaim', 'groups'),
    adminGroups: list('oidc-admin-groups', 'adminGroups', /,/),
    allowAll: bool('oidc-allow-all', 'allowAll', false),
    providerName: str('oidc-provider-name', undefined, 'providerName') ?? 'OpenID Connect',
    autoLogin: bool('oidc-auto-login', 'autoLogin', false),
    allowInsecureHttp,
    stateSecret,
  }
  if (!config.allowAll && config.allowedUsers.length === 0 && config.allowedGroups.length === 0 && config.adminGroups.length === 0) {
    problems.push('oidc: nobody could sign in; set allowedUsers, allowedGroups or adminGroups, or allowAll: true')
  }
  return Object.freeze(config)
}
