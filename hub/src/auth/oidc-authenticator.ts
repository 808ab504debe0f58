/**
 * The OpenID Connect authenticator (issue #6): institutional single sign-on through any OIDC
 * provider (Keycloak, Azure AD / Entra ID, Google, Okta, ...), with openid-client doing discovery,
 * the authorization code flow with PKCE (S256) and ID token validation.
 *
 * Between `begin` (GET /hub/oauth_login) and `finish` (GET /hub/oauth_callback) the flow's secrets
 * (state, nonce, PKCE verifier, next) live in a short-lived signed HttpOnly SameSite=Lax cookie in
 * the browser that started it, so a callback only completes in that browser (no login CSRF) and
 * any hub replica can finish it (with a shared FLEETHUB_OIDC_STATE_SECRET).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import * as client from 'openid-client'
import type { Logger } from '../../../core/src/log.js'
import { HttpError, HubError } from '../errors.js'
import type { HubContext } from '../context.js'
import type { Authenticator, AuthenticatorEntry } from './authenticator.js'
import type { Claims } from './oidc-claims.js'
import { OIDC_FLAGS, OIDC_HELP, parseOidcConfig, STATE_MAX_AGE, type OidcConfig } from './oidc-config.js'
import { oidcRouter } from './oidc.routes.js'

const DISCOVERY_ATTEMPTS = 2
const DISCOVERY_RETRY_MS = 300
const HTTP_TIMEOUT_S = 10

interface FlowState { readonly state: string; readonly nonce: string; readonly verifier: string; readonly next: string; readonly exp: number }

export interface OidcAuthenticator extends Authenticator<HubContext> {
  readonly kind: 'oidc'
  readonly config: OidcConfig
  /** The redirect URL registered at the provider. */
  readonly redirectUrl: string
  /** Starts a sign-in: the provider URL to send the browser to, and the state cookie value to set. */
  begin(next: string): Promise<{ url: string; cookie: string }>
  /** Completes a sign-in from the callback's query string; the merged ID token + userinfo claims and where to go next. */
  finish(query: URLSearchParams, cookie: string | undefined): Promise<{ claims: Claims; next: string }>
}

/** fetch's network failures (refused, reset, DNS) and timeouts: the provider is unreachable. */
function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string; message?: string; cause?: { code?: unknown } } | undefined
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return true
  return err instanceof TypeError && (e?.message === 'fetch failed' || typeof e?.cause?.code === 'string')
}

/** Discovery with a cache of the successful result only: a failure is retried at the next sign-in, never remembered. */
function createDiscovery(o: OidcConfig, log: Logger): () => Promise<client.Configuration> {
  let cached: Promise<client.Configuration> | undefined
  const discoverOnce = () => client.discovery(new URL(o.issuer), o.clientId, o.clientSecret, o.clientSecret ? undefined : client.None(), {
    timeout: HTTP_TIMEOUT_S, ...(o.allowInsecureHttp ? { execute: [client.allowInsecureRequests] } : {}),
  })
  const discover = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await discoverOnce()
        log.info({ issuer: o.issuer }, 'oidc provider discovered')
        return c
      } catch (err) {
        if (attempt >= DISCOVERY_ATTEMPTS) throw err
        await new Promise(r => setTimeout(r, DISCOVERY_RETRY_MS))
      }
    }
  }
  return () => {
    cached ??= discover().catch(err => {
      cached = undefined
      log.error({ issuer: o.issuer, err: String(err), cause: String((err as Error).cause ?? '') }, 'oidc discovery failed')
      throw new HttpError('HUB_OIDC_UNREACHABLE', 'The sign-in service cannot be reached right now. Please try again in a minute; if it keeps failing, tell the hub administrators.', { cause: err })
    })
    return cached
  }
}

function sign(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url')
}

export function encodeState(key: Buffer, s: FlowState): string {
  const payload = Buffer.from(JSON.stringify(s)).toString('base64url')
  return `${payload}.${sign(key, payload)}`
}

/** The flow state from the cookie, or undefined if missing, forged, malformed or expired. */
export function decodeState(key: Buffer, cookie: string | undefined, now = Date.now()): FlowState | undefined {
  if (!cookie || cookie.length > 4096) return undefined
  const [payload, mac, extra] = cookie.split('.')
  if (!payload || !mac || extra !== undefined) return undefined
  const want = Buffer.from(sign(key, payload)), got = Buffer.from(mac)
  if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined
  try {
    const s = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as FlowState
    if (typeof s.state !== 'string' || typeof s.nonce !== 'string' || typeof s.verifier !== 'string' || typeof s.next !== 'string' || typeof s.exp !== 'number') return undefined
    return s.exp > now ? s : undefined
  } catch {
    return undefined
  }
}

/** The provider's error response (`?error=access_denied&...`) as the page the user sees. */
function providerRefused(query: URLSearchParams): HttpError {
  const error = query.get('error') ?? ''
  const description = (query.get('error_description') ?? '').slice(0, 300)
  if (error === 'access_denied') {
    return new HttpError('HUB_OIDC_ACCESS_DENIED', `The sign-in was cancelled or refused at the identity provider${description ? `: ${description}` : '.'} You have not been signed in.`)
  }
  return new HttpError('HUB_OIDC_PROVIDER_ERROR', `The identity provider could not sign you in (${error.slice(0, 60)}${description ? `: ${description}` : ''}). Please try again.`)
}

/** Errors from the code exchange and token validation, sorted into what the user can do about them. */
function exchangeFailed(err: unknown, log: Logger): HttpError {
  if (err instanceof HttpError) return err
  if (isNetworkError(err)) {
    log.error({ err: String(err) }, 'oidc provider unreachable during sign-in')
    return new HttpError('HUB_OIDC_UNREACHABLE', 'The sign-in service did not answer. Please try again in a minute.', { cause: err })
  }
  if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant') {
    log.info({ error: err.error }, 'oidc code rejected')
    return new HttpError('HUB_OIDC_CODE_REJECTED', undefined, { cause: err })
  }
  if (err instanceof client.ResponseBodyError) {
    // invalid_client and friends: the hub's registration at the provider is wrong; that is the operator's to fix
    log.error({ error: err.error, status: err.status }, 'oidc token request refused')
    return new HttpError('HUB_OIDC_TOKEN_REFUSED', undefined, { cause: err })
  }
  log.warn({ err: String(err), code: (err as { code?: string }).code }, 'oidc response failed validation')
  return new HttpError('HUB_OIDC_INVALID_RESPONSE', undefined, { cause: err })
}

export function createOidcAuthenticator(config: OidcConfig, deps: { log: Logger; redirectUrl: string }): OidcAuthenticator {
  const { log, redirectUrl } = deps
  const discovery = createDiscovery(config, log)
  const key = config.stateSecret ? createHmac('sha256', 'fleethub-oidc-state').update(config.stateSecret).digest() : randomBytes(32)
  const oidc: OidcAuthenticator = {
    kind: 'oidc',
    login: { kind: 'provider', providerName: config.providerName, startPath: '/hub/oauth_login', autoLogin: config.autoLogin },
    config,
    redirectUrl,
    routes: ctx => oidcRouter(ctx, oidc),
    async authenticate() {
      return { ok: false, error: `This hub signs in with ${config.providerName}; use the button above.` }
    },

    async begin(next) {
      const c = await discovery()
      const flow: FlowState = {
        state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), next, exp: Date.now() + STATE_MAX_AGE * 1000,
      }
      const url = client.buildAuthorizationUrl(c, {
        redirect_uri: redirectUrl, scope: config.scopes.join(' '), response_type: 'code',
        state: flow.state, nonce: flow.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256',
      })
      return { url: url.href, cookie: encodeState(key, flow) }
    },

    async finish(query, cookie) {
      const flow = decodeState(key, cookie)
      // State first, so that even a provider error is only believed for the browser that asked.
      if (!flow || query.get('state') !== flow.state) {
        throw new HttpError('HUB_OIDC_BAD_STATE')
      }
      if (query.has('error')) throw providerRefused(query)
      if (!query.get('code')) throw new HttpError('HUB_OIDC_NO_CODE')
      const c = await discovery()
      const current = new URL(redirectUrl)
      current.search = query.toString()
      try {
        const tokens = await client.authorizationCodeGrant(c, current, {
          pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
        })
        const idClaims = tokens.claims()
        if (!idClaims) throw new HttpError('HUB_OIDC_NO_ID_TOKEN')
        let userinfo: Claims = {}
        if (c.serverMetadata().userinfo_endpoint) userinfo = await client.fetchUserInfo(c, tokens.access_token, idClaims.sub)
        // userinfo adds what the ID token lacks (groups, usernames); the ID token's validated claims win
        return { claims: { ...userinfo, ...idClaims }, next: flow.next }
      } catch (err) {
        throw exchangeFailed(err, log)
      }
    },
  }
  return oidc
}

export const oidcAuthenticator: AuthenticatorEntry = {
  help: 'oidc: single sign-on through an OpenID Connect provider (options below)',
  flags: OIDC_FLAGS,
  flagsHelp: OIDC_HELP,
  parseOptions: (flags, env, file, problems) => ({ oidc: parseOidcConfig(flags, env, file.oidc, problems) }),
  describe: s => `sign-in: OpenID Connect (${s.oidc?.issuer ?? 'issuer from config'})`,
  create(settings, deps) {
    // parseHubConfig refuses `oidc` without its settings, so this is a caller's mistake
    if (!settings.oidc) throw new HubError('HUB_BAD_CONFIG', 'the oidc authenticator needs its settings (parseHubConfig reads them)')
    const redirectUrl = settings.oidc.redirectUrl ?? `${deps.publicUrl}/hub/oauth_callback` // JupyterHub's oauth_callback_url
    return createOidcAuthenticator(settings.oidc, { log: deps.log.child({ component: 'oidc' }), redirectUrl })
  },
}
