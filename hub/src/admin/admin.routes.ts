/**
 * The admin page (/hub/admin) and a small admin-only JSON endpoint with live server counts. The
 * page is a shell: the user table comes from the REST API one page at a time, so it stays fast at
 * 50,000 users (anchors §6 #14). Its script is a bundle from /hub/static/ (pages/static-assets.ts).
 * Mounted before the pages router.
 */
import { Router, type Request, type Response } from 'express'
import type { HubContext } from '../context.js'
import { identifyBrowser } from '../auth/identify.js'
import { HttpError } from '../errors.js'
import type { StaticAssets } from '../pages/static-assets.js'
import { adminPage } from './admin-page.js'
import { countActiveServersByState } from './admin.repository.js'

export interface AdminStats {
  readonly running: number
  /** Servers whose start is in progress (including those waiting in the admission queue). */
  readonly pending: number
  readonly stopping: number
  /** Starts admitted and running in the spawner now. */
  readonly spawning: number
  /** Starts waiting in the admission queue for a free slot. */
  readonly queued: number
}

/** Server counts by state (one query, admin.repository.ts) and the spawn manager's live counts. */
export async function readAdminStats(ctx: HubContext): Promise<AdminStats> {
  const counts = await countActiveServersByState(ctx.db)
  const count = (s: string) => counts.get(s) ?? 0
  return {
    running: count('running'), pending: count('pending'), stopping: count('stopping'),
    spawning: ctx.spawns.runningSpawns, queued: ctx.spawns.queuedSpawns,
  }
}

type Who = { name: string; admin: boolean } | undefined

function who(res: Response): Who {
  const id = res.locals.identity
  return id?.kind === 'user' && id.userId ? { name: id.name, admin: id.admin } : undefined
}

export function adminRouter(ctx: HubContext, assets: StaticAssets): Router {
  const r = Router()
  r.use('/hub/admin', identifyBrowser(ctx))

  r.get('/hub/admin', (req: Request, res: Response) => {
    const me = who(res)
    if (!me) return res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`)
    res.set('cache-control', 'no-store').type('html')
    if (!me.admin) throw new HttpError('HUB_FORBIDDEN', 'Only admins may open the admin page.')
    res.status(200).send(adminPage({ user: me.name, scriptSrc: assets.url('admin-page.js') }))
  })

  r.get('/hub/admin/stats', async (_req, res) => {
    const me = who(res)
    res.set('cache-control', 'no-store')
    res.locals.errorFormat = 'json' // the admin page's script reads it
    if (!me?.admin) throw new HttpError('HUB_FORBIDDEN', 'Only admins may read the admin stats.')
    res.json(await readAdminStats(ctx))
  })

  return r
}
