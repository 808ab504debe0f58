/** What every page route does: answer with HTML that is never cached, and send anonymous visitors to sign in. */
import type { Request, Response } from 'express'

export function sendHtml(res: Response, status: number, body: string): void {
  res.status(status).type('html').set('cache-control', 'no-store').send(body)
}

/** The signed-in user, or undefined after redirecting to the login page (which comes back here). */
export function requireLogin(req: Request, res: Response): { name: string; userId: string } | undefined {
  const id = res.locals.identity
  if (id?.kind === 'user' && id.userId) return { name: id.name, userId: id.userId }
  res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`)
  return undefined
}
