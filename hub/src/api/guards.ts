import type { Response } from 'express'
import type { Identity } from '../auth/request-auth.js'
import { grants, grantsAny, type ScopeTarget } from '../auth/scopes.js'
import { HttpError, missingScope } from '../errors.js'

/** The caller, or 403 Forbidden (never 401: 3.0 single-user servers treat 401 as a hard error). */
export function caller(res: Response): Identity {
  const id = res.locals.identity
  if (!id) throw new HttpError('HUB_FORBIDDEN')
  return id
}

/** The caller if it holds any of `scopes` on `target`; else 403 naming the scopes. */
export function needScope(res: Response, scopes: readonly string[], target: ScopeTarget = {}): Identity {
  const id = caller(res)
  if (!scopes.some(s => grants(id.scopes, s, target))) throw missingScope(scopes)
  return id
}

/**
 * `needScope` with JupyterHub's 404: a caller holding the scope only for other users or groups
 * gets 404 "No access to resources or resources not found", the same answer as for a missing
 * user, so a scoped token cannot probe which users exist. Holding none of the scopes is 403.
 */
export function needScopeOn(res: Response, scopes: readonly string[], target: ScopeTarget): Identity {
  const id = caller(res)
  if (scopes.some(s => grants(id.scopes, s, target))) return id
  throw noScope(id, scopes)
}

/** 404 when the caller holds one of `scopes` for someone else (see needScopeOn), else 403 naming them. */
export function noScope(id: Identity, scopes: readonly string[]) {
  if (scopes.some(s => grantsAny(id.scopes, s))) return new HttpError('HUB_NO_ACCESS')
  return missingScope(scopes)
}
