/**
 * Every way of signing in, by the name `--authenticator` takes. A new authenticator is one module
 * exporting an `AuthenticatorEntry` (auth/authenticator.ts) and one line here; config, help, the
 * start banner, the hub and the pages find it through this list.
 */
import type { AuthenticatorEntry } from './authenticator.js'
import { devAuthenticator } from './dev-authenticator.js'
import { nativeAuthenticator } from './native-authenticator.js'
import { oidcAuthenticator } from './oidc-authenticator.js'

export const AUTHENTICATORS = {
  dev: devAuthenticator,
  native: nativeAuthenticator,
  oidc: oidcAuthenticator,
} as const satisfies Record<string, AuthenticatorEntry>

export type AuthenticatorName = keyof typeof AUTHENTICATORS

export const AUTHENTICATOR_NAMES = Object.keys(AUTHENTICATORS) as AuthenticatorName[]

/** Every authenticator's own flags, for the hub's parseArgs. */
export const AUTHENTICATOR_FLAGS = Object.assign({}, ...Object.values(AUTHENTICATORS).map((a: AuthenticatorEntry) => a.flags ?? {})) as
  Readonly<Record<string, { readonly type: 'string' | 'boolean' }>>
