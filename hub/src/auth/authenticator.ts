/**
 * What a way of signing in implements, and what its registry entry (auth/authenticators.ts) says
 * about it: its flags, its options, its line in the start banner. The pages ask the authenticator
 * how to sign in (`login`) and mount its own routes (`routes`), so they know no authenticator by name.
 */
import type { Router } from 'express'
import type { Db } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import type { OidcConfig } from './oidc-config.js'

export interface LoginResult {
  readonly ok: boolean
  readonly name?: string
  /** Shown on the login page when not ok. */
  readonly error?: string
}

/** How the login page signs people in: a username and password form (with a hint), or a provider's button. */
export type LoginMethod =
  | { readonly kind: 'password'; readonly hint?: 'dev-password' | 'first-sign-in' }
  | {
    readonly kind: 'provider'
    /** "Sign in with <providerName>". */
    readonly providerName: string
    /** Where the button goes; `?next=` is added. */
    readonly startPath: string
    /** Skip the login page and go straight to the provider (JupyterHub auto_login). */
    readonly autoLogin: boolean
  }

/** `Ctx` is what `routes` is given: the hub's context (context.ts), a parameter so this file need not import it. */
export interface Authenticator<Ctx = unknown> {
  readonly kind: string
  readonly login: LoginMethod
  /** Checks a submitted login form: the user name, or why not. */
  authenticate(username: string, password: string): Promise<LoginResult>
  /** Routes of its own (OIDC's /hub/oauth_login and /hub/oauth_callback), mounted with the pages. */
  routes?(ctx: Ctx): Router
}

/** The parts of the hub's config the authenticators read. */
export interface AuthenticatorSettings {
  readonly devPassword: string
  readonly devPasswordGenerated: boolean
  readonly oidc: OidcConfig | undefined
}

export interface AuthenticatorDeps {
  readonly db: Db
  readonly log: Logger
  /** The hub's public URL, known only once the proxy runs (OIDC's default redirect URL). */
  readonly publicUrl: string
}

type Env = Readonly<Record<string, string | undefined>>

/** One way of signing in, as `--authenticator <name>` chooses it. */
export interface AuthenticatorEntry {
  /** For `--help`: what choosing it means (one or two lines, indented to the help's column). */
  readonly help: string
  /** Flags of its own, merged into the hub's, and their help. */
  readonly flags?: Readonly<Record<string, { readonly type: 'string' | 'boolean' }>>
  readonly flagsHelp?: string
  /** Its options from flags, env and the config file, read only when it is chosen; problems are appended. */
  parseOptions?(flags: Readonly<Record<string, unknown>>, env: Env, file: Readonly<Record<string, unknown>>, problems: string[]): Partial<AuthenticatorSettings>
  /** Its line in the start banner. */
  describe(settings: AuthenticatorSettings): string
  create(settings: AuthenticatorSettings, deps: AuthenticatorDeps): Authenticator
}
