/**
 * The OAuth2 provider user servers log their users in with (contract §4.5): authorization code
 * grant, no consent page for a user's own server, codes single-use and short-lived, access tokens
 * tied to the browser session (logout revokes them) and to the server's client (stop revokes them).
 */
import express, { Router } from 'express'
import type { HubContext } from '../context.js'
import { identifyBrowser } from '../auth/identify.js'
import { grants } from '../auth/scopes.js'
import { hashToken, newOauthToken, sameHash } from '../auth/token-secrets.js'
import { createToken } from '../tokens/token.repository.js'
import { findServerById } from '../servers/server.repository.js'
import { findUserById } from '../users/user.repository.js'
import { createOauthCode, findOauthClient, takeOauthCode } from './oauth.repository.js'
import { HttpError } from '../errors.js'

const CODE_TTL_MS = 10 * 60 * 1000
const ACCESS_TOKEN_TTL_S = 14 * 24 * 3600

export function oauthRouter(ctx: HubContext): Router {
  const r = Router()

  r.get('/authorize', identifyBrowser(ctx), async (req, res) => {
    const q = req.query
    const clientId = typeof q.client_id === 'string' ? q.client_id : ''
    const redirectUri = typeof q.redirect_uri === 'string' ? q.redirect_uri : ''
    const state = typeof q.state === 'string' ? q.state : undefined
    if (q.response_type !== 'code') throw new HttpError('HUB_OAUTH_UNSUPPORTED_RESPONSE_TYPE')
    const client = await findOauthClient(ctx.db, clientId)
    // Never redirect to an unregistered URI: that would hand the code to whoever named it.
    if (!client) throw new HttpError('HUB_OAUTH_INVALID_CLIENT', `No such client: ${clientId}`)
    if (client.redirectUri !== redirectUri) throw new HttpError('HUB_OAUTH_INVALID_REQUEST', 'redirect_uri does not match the registered one')
    const id = res.locals.identity
    if (!id || id.kind !== 'user') return res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`)
    const server = client.serverId ? await findServerById(ctx.db, client.serverId) : undefined
    if (!server) throw new HttpError('HUB_OAUTH_INVALID_CLIENT', 'This client no longer has a server')
    const target = { user: server.userName, server: `${server.userName}/${server.name}` }
    if (!grants(id.scopes, 'access:servers', target)) {
      res.locals.errorFormat = 'html' // a person in a browser, on their way to a server
      throw new HttpError('HUB_FORBIDDEN', `You do not have access to the server of ${server.userName}.`)
    }
    const code = newOauthToken()
    await createOauthCode(ctx.db, {
      codeHash: hashToken(code), clientId: client.id, userId: id.userId!, sessionId: id.sessionId ?? null, redirectUri,
      scopes: [`access:servers!server=${server.userName}/${server.name}`, `read:users:groups!user=${id.name}`, `read:users:name!user=${id.name}`],
      expiresAt: new Date(Date.now() + CODE_TTL_MS),
    })
    const sep = redirectUri.includes('?') ? '&' : '?'
    res.redirect(302, `${redirectUri}${sep}code=${encodeURIComponent(code)}${state !== undefined ? `&state=${encodeURIComponent(state)}` : ''}`)
  })

  r.post('/token', express.urlencoded({ extended: false, limit: '16kb', type: () => true }), async (req, res) => {
    res.set({ 'cache-control': 'no-store', pragma: 'no-cache' })
    const b = (req.body ?? {}) as Record<string, unknown>
    const s = (k: string) => (typeof b[k] === 'string' ? b[k] as string : '')
    if (s('grant_type') !== 'authorization_code') throw new HttpError('HUB_OAUTH_UNSUPPORTED_GRANT_TYPE')
    const client = await findOauthClient(ctx.db, s('client_id'))
    if (!client || !sameHash(client.secretHash, hashToken(s('client_secret')))) throw new HttpError('HUB_OAUTH_INVALID_CLIENT', 'client authentication failed', { status: 401 }) // RFC 6749 §5.2
    // Single use: the code row is deleted as it is read, so a replay finds nothing.
    const code = await takeOauthCode(ctx.db, hashToken(s('code')))
    if (!code || code.clientId !== client.id || code.redirectUri !== s('redirect_uri')) throw new HttpError('HUB_OAUTH_INVALID_GRANT')
    const user = await findUserById(ctx.db, code.userId)
    const { token } = await createToken(ctx.db, {
      kind: 'oauth', userId: code.userId, sessionId: code.sessionId ?? undefined, oauthClientId: client.id,
      scopes: code.scopes, note: client.description, expiresInSeconds: ACCESS_TOKEN_TTL_S,
    })
    const name = user?.name ?? ''
    res.json({
      access_token: token, expires_in: ACCESS_TOKEN_TTL_S, token_type: 'Bearer',
      scope: code.scopes.map(sc => sc.replace(`!user=${name}`, '!user')).join(' '),
    })
  })

  return r
}
