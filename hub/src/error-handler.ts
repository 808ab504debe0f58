/**
 * The one place errors become answers. Whatever a handler throws is mapped once (errors.ts
 * `toHttpError`); the body is JupyterHub's `{"status", "message"}` plus our `code` for the API, an
 * RFC 6749 `{"error", "error_description"}` for the OAuth2 codes, and an HTML page elsewhere. A 5xx
 * is logged at error with its stack and carries the request id; a 4xx is logged at info.
 */
import type { ErrorRequestHandler, Request, Response } from 'express'
import type { Logger } from '../../core/src/log.js'
import { catalogueEntry, HttpError, toHttpError } from './errors.js'
import { requestIdOf } from './request-id.js'
import { errorPage } from './pages/pages.js'

declare global {
  namespace Express {
    interface Locals {
      /** How this request's errors are answered when the path does not decide it (see `errorFormat`). */
      errorFormat?: 'json' | 'html'
    }
  }
}

/** JSON under /hub/api, an HTML page elsewhere, unless the route said otherwise (a JSON endpoint outside /hub/api, a page under it). */
function errorFormat(req: Request, res: Response): 'json' | 'html' {
  return res.locals.errorFormat ?? (req.path.startsWith('/hub/api') ? 'json' : 'html')
}

/** The JupyterHub error body; a 5xx also names the request id to quote when reporting it. */
export function jsonErrorBody(status: number, message: string, code: string, requestId: string): Record<string, unknown> {
  return status >= 500 ? { status, message, code, request_id: requestId } : { status, message, code }
}

function logFailure(log: Logger, req: Request, reqId: string, err: unknown, known: HttpError | undefined): void {
  const status = known?.statusCode ?? 500
  if (status >= 500) log.error({ err, reqId, code: known?.code ?? 'HUB_INTERNAL', method: req.method, path: req.path }, 'request failed')
  else log.info({ reqId, code: known?.code, path: req.path, status }, 'request rejected')
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err) // express closes the connection
    const known = toHttpError(err)
    const reqId = requestIdOf(req, res)
    logFailure(log, req, reqId, err, known)
    const status = known?.statusCode ?? 500
    const code = known?.code ?? 'HUB_INTERNAL'
    const message = known ? known.message : catalogueEntry('HUB_INTERNAL').message
    res.set('cache-control', 'no-store') // an error is about this moment; never serve it from a cache
    if (known) res.set(known.headers)
    const oauth = known && catalogueEntry(known.code).oauth
    if (oauth) {
      res.status(status).json({ error: oauth, error_description: message })
    } else if (errorFormat(req, res) === 'json') {
      res.status(status).json(jsonErrorBody(status, message, code, reqId))
    } else {
      res.status(status).type('html').send(errorPage({ status, message, user: res.locals.identity?.name, requestId: status >= 500 ? reqId : undefined }))
    }
  }
}
