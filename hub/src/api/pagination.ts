/**
 * JupyterHub's pagination (contract §7.1): `offset`/`limit` (default 50, max 200) always apply;
 * the envelope `{"items", "_pagination"}` only when the client asks with
 * `Accept: application/jupyterhub-pagination+json`. `next.url` is absolute, from the request Host.
 */
import type { Request } from 'express'
import { HttpError } from '../errors.js'

export const PAGINATION_MEDIA_TYPE = 'application/jupyterhub-pagination+json'
export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 200

export interface Page { readonly offset: number; readonly limit: number; readonly envelope: boolean }

function int(v: unknown, name: string, def: number): number {
  if (v === undefined || v === '') return def
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new HttpError('HUB_BAD_PAGINATION', `${name} must be a non-negative integer`)
  return n
}

export function parsePage(req: Request): Page {
  const offset = int(req.query.offset, 'offset', 0)
  const limit = Math.min(int(req.query.limit, 'limit', DEFAULT_LIMIT) || DEFAULT_LIMIT, MAX_LIMIT)
  const accept = req.headers.accept ?? ''
  const envelope = accept.split(',').some(t => t.split(';')[0]!.trim() === PAGINATION_MEDIA_TYPE)
  return { offset, limit, envelope }
}

export function paginate<T>(req: Request, page: Page, items: T, total: number): unknown {
  if (!page.envelope) return items
  const count = Array.isArray(items) ? items.length : Object.keys(items as object).length
  let next: unknown = null
  if (page.offset + count < total) {
    const proto = (req.headers['x-forwarded-proto'] as string | undefined)?.split(',')[0]?.trim() || req.protocol
    const url = new URL(`${proto}://${req.headers.host ?? 'localhost'}${req.originalUrl}`)
    url.searchParams.set('offset', String(page.offset + page.limit))
    url.searchParams.set('limit', String(page.limit))
    next = { offset: page.offset + page.limit, limit: page.limit, url: url.toString() }
  }
  return { items, _pagination: { offset: page.offset, limit: page.limit, total, next } }
}
