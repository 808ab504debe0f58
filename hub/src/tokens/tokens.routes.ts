/**
 * A user's API tokens under /hub/api/users/:name/tokens (contract §7.7): list, mint, read, revoke.
 * A minted token never holds more than its owner nor more than the caller who minted it; a revoked
 * token is refused at once (this process's identity cache is invalidated with the row).
 */
import express, { Router, type Response } from 'express'
import type { HubContext } from '../context.js'
import type { Identity } from '../auth/request-auth.js'
import { expandScopes, grants, intersectScopes, validateScope } from '../auth/scopes.js'
import { HttpError, userNotFound } from '../errors.js'
import { createToken, deleteToken, findTokenById, listUserTokens, type TokenRecord } from './token.repository.js'
import { findUserByName, type User } from '../users/user.repository.js'
import { caller, noScope } from '../api/guards.js'
import { isoTime } from '../api/models.js'
import { listGroupNamesOfUser } from '../groups/group.repository.js'

const MAX_NOTE = 1000
/** About 300 years: any more and `Date` overflows into an invalid timestamp. */
const MAX_EXPIRES_IN = 10_000_000_000
const BODY_KEYS = new Set(['note', 'expires_in', 'scopes', 'roles'])

/** Like api/body.ts's jsonBody (any content type, bodiless is no body) but sized for a token request. */
const tokenBody = express.json({ limit: '64kb', strict: false, type: () => true })

/**
 * needScopeOn for a user's resources, where `!group=` scopes grant the resources of the group's
 * members: the user's groups are read (at request time, so membership changes count at once)
 * only when the caller holds such a scope and nothing more direct.
 */
async function needUserScope(ctx: HubContext, res: Response, scopes: readonly string[], name: string): Promise<Identity> {
  const id = caller(res)
  if (scopes.some(s => grants(id.scopes, s, { user: name }))) return id
  if (scopes.some(s => [...id.scopes].some(held => held.startsWith(`${s}!group=`)))) {
    const user = await findUserByName(ctx.db, name)
    const groups = user ? await listGroupNamesOfUser(ctx.db, user.id) : []
    if (scopes.some(s => grants(id.scopes, s, { user: name, groups }))) return id
  }
  throw noScope(id, scopes)
}

async function loadUser(ctx: HubContext, name: string): Promise<User> {
  const user = await findUserByName(ctx.db, name)
  if (!user) throw userNotFound(name)
  return user
}

/** `a17` or `17` -> `17`; anything else is no token. */
function tokenRowId(param: unknown): string | undefined {
  const m = typeof param === 'string' ? /^a?(\d{1,18})$/.exec(param) : null
  return m?.[1]
}

/** The token model (contract §7.2); `scopes` are what the token grants now, expanded. */
export function tokenModel(ctx: HubContext, t: TokenRecord): Record<string, unknown> {
  return {
    user: t.userName,
    id: `a${t.id}`,
    kind: 'api_token',
    roles: [...t.roles],
    scopes: [...ctx.auth.tokenScopes(t)].sort(),
    created: isoTime(t.created),
    last_activity: isoTime(t.lastActivity),
    expires_at: isoTime(t.expiresAt),
    note: t.note,
    session_id: t.sessionId,
    // server and OAuth tokens keep their client's description ("Server at /user/alice/") in `note`
    oauth_client: t.kind === 'api' ? 'JupyterHub' : (t.note ?? 'JupyterHub'),
  }
}

interface TokenRequest {
  readonly note?: string
  readonly expiresIn?: number
  readonly scopes?: readonly string[]
  readonly roles?: readonly string[]
}

function stringList(value: unknown, key: string): string[] | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) throw new HttpError('HUB_BAD_REQUEST', `${key} must be a list of strings`)
  if (value.length > 200) throw new HttpError('HUB_BAD_REQUEST', `${key}: at most 200 entries`)
  return [...new Set(value as string[])]
}

/** Validate the POST body's shape; scopes and roles are checked against the owner afterwards. */
export function parseTokenRequest(body: unknown): TokenRequest {
  if (body === undefined || body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError('HUB_BAD_REQUEST', 'Body must be a JSON dict or empty')
  const b = body as Record<string, unknown>
  const unknown = Object.keys(b).filter(k => !BODY_KEYS.has(k))
  if (unknown.length > 0) throw new HttpError('HUB_BAD_REQUEST', `Invalid JSON keys: ${unknown.join(', ')}`)
  let note: string | undefined
  if (b.note !== undefined && b.note !== null) {
    if (typeof b.note !== 'string') throw new HttpError('HUB_BAD_REQUEST', 'note must be a string')
    if (b.note.length > MAX_NOTE) throw new HttpError('HUB_BAD_REQUEST', `note must be at most ${MAX_NOTE} characters`)
    note = b.note || undefined
  }
  let expiresIn: number | undefined
  if (b.expires_in !== undefined && b.expires_in !== null) {
    if (typeof b.expires_in !== 'number' || !Number.isInteger(b.expires_in) || b.expires_in <= 0 || b.expires_in > MAX_EXPIRES_IN) {
      throw new HttpError('HUB_BAD_REQUEST', `expires_in must be a positive integer number of seconds (at most ${MAX_EXPIRES_IN})`)
    }
    expiresIn = b.expires_in
  }
  return { note, expiresIn, scopes: stringList(b.scopes, 'scopes'), roles: stringList(b.roles, 'roles') }
}

function holderLabel(id: Identity): string {
  return `${id.kind === 'user' ? 'User' : 'Service'} ${id.name}`
}

/**
 * The scopes and roles to store for a new token of `owner` minted by `by`: requested scopes must
 * be known, roles must exist, and everything they expand to must be held by the owner and by the
 * caller. Nothing requested means `inherit` (the owner's scopes, as they are at each use).
 */
export function resolveTokenScopes(ctx: HubContext, owner: User, by: Identity, req: TokenRequest): { scopes: string[]; roles: string[] } {
  const roles = req.roles ?? []
  for (const r of roles) if (!ctx.auth.hasRole(r)) throw new HttpError('HUB_NO_SUCH_ROLE', `No such role: ${r}`)
  for (const s of req.scopes ?? []) validateScope(s) // a ScopeError is HUB_BAD_SCOPE, 400, at the edge
  const scopes = req.scopes?.length || roles.length ? [...(req.scopes ?? [])] : ['inherit']
  const ownerScopes = ctx.auth.userScopes(owner)
  const requested = [...scopes, ...roles.flatMap(r => ctx.auth.roleScopes(r) ?? [])]
  const expanded = expandScopes(requested, { kind: 'user', name: owner.name }, { inherit: [...ownerScopes] })
  const notOwner = intersectScopes(expanded, ownerScopes).refused
  if (notOwner.length > 0) throw new HttpError('HUB_SCOPES_NOT_HELD', `Not assigning requested scopes ${notOwner.join(',')} not held by User ${owner.name}`)
  const notCaller = intersectScopes(expanded, by.scopes).refused
  if (notCaller.length > 0) throw new HttpError('HUB_SCOPES_NOT_HELD', `Not assigning requested scopes ${notCaller.join(',')} not held by ${holderLabel(by)}`)
  return { scopes, roles: [...roles] }
}

async function ownedToken(ctx: HubContext, user: User, param: unknown): Promise<TokenRecord> {
  const id = tokenRowId(param)
  const t = id === undefined ? undefined : await findTokenById(ctx.db, id)
  // someone else's token, or an expired one, is as absent as a missing one
  if (!t || t.userId !== user.id || (t.expiresAt && t.expiresAt.getTime() <= Date.now())) throw new HttpError('HUB_TOKEN_NOT_FOUND')
  return t
}

export function tokensRouter(ctx: HubContext): Router {
  const r = Router()

  r.get('/users/:name/tokens', async (req, res) => {
    const name = req.params.name as string
    await needUserScope(ctx, res, ['read:tokens'], name)
    const user = await loadUser(ctx, name)
    const tokens = await listUserTokens(ctx.db, user.id)
    res.json({ api_tokens: tokens.map(t => tokenModel(ctx, t)) })
  })

  r.post('/users/:name/tokens', tokenBody, async (req, res) => {
    const name = req.params.name as string
    const by = await needUserScope(ctx, res, ['tokens'], name)
    const user = await loadUser(ctx, name)
    const body = parseTokenRequest(req.body)
    const { scopes, roles } = resolveTokenScopes(ctx, user, by, body)
    const note = body.note ?? (by.kind === 'user' && by.name === user.name ? 'Requested via api' : `Requested via api by ${by.kind} ${by.name}`)
    const { token, id } = await createToken(ctx.db, { kind: 'api', userId: user.id, scopes, roles, note, expiresInSeconds: body.expiresIn })
    const created = await findTokenById(ctx.db, id)
    if (!created) throw new HttpError('HUB_TOKEN_NOT_FOUND') // deleted in between by another request
    ctx.log.info({ user: user.name, by: by.name, tokenId: id }, 'token created')
    res.status(201).json({ ...tokenModel(ctx, created), token })
  })

  r.get('/users/:name/tokens/:id', async (req, res) => {
    const name = req.params.name as string
    await needUserScope(ctx, res, ['read:tokens'], name)
    const user = await loadUser(ctx, name)
    res.json(tokenModel(ctx, await ownedToken(ctx, user, req.params.id)))
  })

  r.delete('/users/:name/tokens/:id', async (req, res) => {
    const name = req.params.name as string
    const by = await needUserScope(ctx, res, ['tokens'], name)
    const user = await loadUser(ctx, name)
    const t = await ownedToken(ctx, user, req.params.id)
    if (!await deleteToken(ctx.db, t.id)) throw new HttpError('HUB_TOKEN_NOT_FOUND')
    ctx.auth.invalidate({ tokenId: t.id })
    ctx.log.info({ user: user.name, by: by.name, tokenId: t.id }, 'token revoked')
    res.status(204).end()
  })

  return r
}
