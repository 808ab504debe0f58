import type { Response } from 'express'
import type { Identity } from '../auth/request-auth.js'
import { grants, type ScopeTarget } from '../auth/scopes.js'
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
