/** The signed-in user's pages: `/` and `/hub/` lead here, /hub/home (their server, start and stop) and /hub/token. */
import { Router, type Request, type Response } from 'express'
import type { HubContext } from '../context.js'
import { xsrfToken } from '../auth/xsrf.js'
import { findServer, type ServerRecord } from '../servers/server.repository.js'
import { serverPrefix } from '../proxy/route-sync.js'
import { homePage, type ProfileOption, type ServerView } from './pages.js'
import { tokenPage } from '../tokens/token-page.js'
import { requireLogin, sendHtml } from './page-response.js'

function view(server: ServerRecord | undefined, user: string): ServerView {
  return {
    name: server?.name ?? '', state: server?.state ?? 'stopped', url: serverPrefix(user, server?.name ?? ''),
    lastError: server?.lastError ?? null, lastActivity: server?.lastActivity ?? null,
  }
}

/** The spawner's profiles, if it offers any (the Kubernetes spawner does). */
function spawnerProfiles(ctx: HubContext): ProfileOption[] | undefined {
  const spawner = ctx.spawns.spawner as { profiles?: () => ProfileOption[] }
  return spawner.profiles?.()
}

export function homeRouter(ctx: HubContext): Router {
  const r = Router()
  const root = (_req: Request, res: Response) => res.redirect(302, res.locals.identity ? '/hub/home' : '/hub/login')
  r.get('/', root)
  r.get(['/hub', '/hub/'], root)

  r.get('/hub/home', async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    const server = await findServer(ctx.db, me.userId, '')
    sendHtml(res, 200, homePage({ user: me.name, server: view(server, me.name), xsrf: xsrfToken(req, res), admin: res.locals.identity?.admin, profiles: spawnerProfiles(ctx) }))
  })

  r.get('/hub/token', (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    sendHtml(res, 200, tokenPage({ user: me.name, admin: res.locals.identity?.admin }))
  })

  return r
}
