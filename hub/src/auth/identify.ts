import type { Request, Response, NextFunction } from 'express'
import type { HubContext } from '../context.js'
import type { Identity } from './request-auth.js'
import { parseCookies, SESSION_COOKIE } from './cookies.js'
import { isSameOrigin } from './xsrf.js'

declare global {
  namespace Express {
    interface Locals {
      identity?: Identity
    }
  }
}

/** `Authorization: token <t>` or `bearer <t>` (case-insensitive), as JupyterHub accepts. */
export function bearerToken(req: Request): string | undefined {
  const h = req.headers.authorization
  if (!h) return undefined
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(h)
  return m?.[1]
}

/** Pages: the browser session only. */
export function identifyBrowser(ctx: HubContext) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const cookie = parseCookies(req.headers.cookie).get(SESSION_COOKIE)
    if (cookie) res.locals.identity = await ctx.auth.fromSessionCookie(cookie)
    next()
  }
}

/**
 * API: a token, else the session cookie but only for requests from our own origin, so another
 * site cannot drive the API with a logged-in user's cookie. A bad token is anonymous (-> 403), as
 * JupyterHub answers; never 401, which breaks 3.0 single-user servers.
 */
export function identifyApi(ctx: HubContext) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const token = bearerToken(req)
    if (token) {
      res.locals.identity = await ctx.auth.fromToken(token)
    } else {
      const cookie = parseCookies(req.headers.cookie).get(SESSION_COOKIE)
      if (cookie && isSameOrigin(req)) res.locals.identity = await ctx.auth.fromSessionCookie(cookie)
    }
    next()
  }
}
