/**
 * From a provider's claims to a hub user: the username, the groups, and whether this person may
 * sign in and is an admin. Pure, so every rule is unit-tested without a provider.
 */
import { checkUsername } from './username.js'
import type { OidcConfig } from './oidc-config.js'

export type Claims = Readonly<Record<string, unknown>>

export type ClaimDecision =
  | { readonly ok: true; readonly name: string; readonly groups: readonly string[]; readonly admin: boolean | undefined }
  | { readonly ok: false; readonly status: 403; readonly code: 'HUB_OIDC_BAD_USERNAME' | 'HUB_OIDC_NOT_ALLOWED'; readonly message: string; readonly name?: string }

/** A claim by name, or by dotted path into nested objects (Keycloak's `realm_access.roles`). A literal key with dots wins. */
export function claimAt(claims: Claims, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path]
  let cur: unknown = claims
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

/** Groups as a list of strings: an array claim, or one string (some providers send a single group so). */
export function groupsFrom(claims: Claims, path: string): string[] {
  const v = claimAt(claims, path)
  if (typeof v === 'string') return v === '' ? [] : [v]
  if (Array.isArray(v)) return v.filter((g): g is string => typeof g === 'string')
  return []
}

type UsernameConfig = Pick<OidcConfig, 'usernameClaim' | 'normalizeUsername' | 'usernameDomain'>

/** The hub username, or why there is none. */
export function usernameFrom(claims: Claims, o: UsernameConfig): { name: string } | { error: string; name?: string } {
  const v = claimAt(claims, o.usernameClaim)
  if (typeof v !== 'string' || v.trim() === '') return { error: `The identity provider did not send the '${o.usernameClaim}' claim, which this hub uses as the username.` }
  let name = v.trim()
  if (o.normalizeUsername) name = name.toLowerCase()
  if (o.usernameDomain) {
    const at = name.lastIndexOf('@')
    if (at < 0 || name.slice(at + 1).toLowerCase() !== o.usernameDomain) return { error: `Only accounts in ${o.usernameDomain} can sign in here.`, name }
    name = name.slice(0, at)
  }
  const bad = checkUsername(name)
  if (bad) return { error: `Your account name '${name}' cannot be used here. ${bad}`, name }
  return { name }
}

/**
 * Who may sign in (JupyterHub OAuthenticator's rules): allowAll, a listed user, a member of an
 * allowed group, a configured hub admin, or a member of an admin group. `admin` is undefined when
 * no admin groups are configured (the hub's own admin setting stays as it is).
 */
export function decide(claims: Claims, o: OidcConfig, hubAdmins: ReadonlySet<string>): ClaimDecision {
  const user = usernameFrom(claims, o)
  if ('error' in user) return { ok: false, status: 403, code: 'HUB_OIDC_BAD_USERNAME', message: user.error, name: user.name }
  const { name } = user
  const groups = groupsFrom(claims, o.groupsClaim)
  const inAdminGroup = groups.some(g => o.adminGroups.includes(g))
  const allowed = o.allowAll || o.allowedUsers.includes(name) || groups.some(g => o.allowedGroups.includes(g)) || inAdminGroup || hubAdmins.has(name)
  if (!allowed) {
    return { ok: false, status: 403, code: 'HUB_OIDC_NOT_ALLOWED', name, message: `You signed in as ${name}, but that account is not allowed to use this hub. If you think it should be, ask the hub's administrators to add you.` }
  }
  const admin = o.adminGroups.length > 0 ? inAdminGroup || hubAdmins.has(name) : undefined
  return { ok: true, name, groups, admin }
}
