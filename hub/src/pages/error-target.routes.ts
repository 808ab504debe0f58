/**
 * The proxy's error target (contract §2.6): GET /hub/error/<code>?url=<original path>. The proxy
 * keeps its own status and copies only our page, so this answers 200.
 */
import { Router } from 'express'
import { errorPage } from './pages.js'
import { sendHtml } from './page-response.js'

const MESSAGES: Readonly<Record<number, string>> = { 404: 'Nothing is served at this address.', 503: 'The server did not answer.' }

export function errorTargetRouter(): Router {
  const r = Router()
  r.get('/hub/error/:code', (req, res) => {
    const code = Number(req.params.code)
    const status = Number.isInteger(code) && code >= 400 && code < 600 ? code : 500
    const url = typeof req.query.url === 'string' ? req.query.url : undefined
    sendHtml(res, 200, errorPage({ status, message: MESSAGES[status] ?? 'Something went wrong.', url, user: res.locals.identity?.name }))
  })
  return r
}
