/**
 * A request's id: the proxy's (or a load balancer's) `x-request-id` when it sends a sane one, else a
 * fresh UUID. It goes back in the `x-request-id` header of every error answer (and of every
 * response at debug level), into the log lines, and into the body of a 5xx, so a user's "it
 * failed" can be found in the log.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { RequestHandler, Response } from 'express'
import type { Logger } from '../../core/src/log.js'

declare global {
  namespace Express {
    interface Locals {
      requestId?: string
    }
  }
}

export const REQUEST_ID_HEADER = 'x-request-id'

/** Short and plain: an incoming id is echoed into headers and logs, so nothing that could forge a line or a header. */
const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The incoming id if it is sane, else a new one. */
export function requestIdFrom(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER]
  return typeof incoming === 'string' && SANE_ID.test(incoming) ? incoming : randomUUID()
}

/**
 * This request's id, made on first ask (an error answer, a debug log line) and sent back in
 * `x-request-id` from then on: a request that succeeds quietly costs nothing (no UUID, no header).
 */
export function requestIdOf(req: IncomingMessage, res: Response): string {
  let id = res.locals.requestId
  if (id === undefined) {
    id = res.locals.requestId = requestIdFrom(req)
    if (!res.headersSent) res.setHeader(REQUEST_ID_HEADER, id)
  }
  return id
}

/** At debug level, one line per request when it ends, with its id; undefined otherwise (nothing on the hot path). */
export function requestLog(log: Logger): RequestHandler | undefined {
  if (!log.isLevelEnabled('debug')) return undefined
  return (req, res, next) => {
    const reqId = requestIdOf(req, res)
    const started = process.hrtime.bigint()
    res.on('finish', () => log.debug({ reqId, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request'))
    next()
  }
}
