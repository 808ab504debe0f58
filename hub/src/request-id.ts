/**
 * Every request gets an id: the proxy's (or a load balancer's) `x-request-id` when it sends a sane
 * one, else a fresh UUID. It goes back in the `x-request-id` header, into the request's log line
 * and into the body of a 5xx, so a user's "it failed" can be found in the log.
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

export function requestIdOf(res: Response): string {
  return res.locals.requestId ?? ''
}

/** Assigns the id, and at debug level logs one line per request when it ends. */
export function assignRequestId(log: Logger): RequestHandler {
  return (req, res, next) => {
    const reqId = requestIdFrom(req)
    res.locals.requestId = reqId
    res.setHeader(REQUEST_ID_HEADER, reqId)
    if (log.isLevelEnabled('debug')) {
      const started = process.hrtime.bigint()
      res.on('finish', () => log.debug({ reqId, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request'))
    }
    next()
  }
}
