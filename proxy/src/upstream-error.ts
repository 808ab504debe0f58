/** What the proxy does when an upstream fails: log it by `err.code`, then tell the client. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { KNOWN_UPSTREAM_ERRORS } from './errors.js'
import { type Logger, logPath } from './log.js'

/** Answers a web request whose upstream failed. */
export type WebFailure = (err: NodeJS.ErrnoException, req: IncomingMessage, res: ServerResponse) => void

/**
 * Before the response started: an error status (error target / error path / plain, via
 * `respondError`). After: the client response is cut, so the client sees a truncated answer rather
 * than a complete-looking one.
 */
export function createWebFailure(
  log: Logger, respondError: (code: number, req: IncomingMessage, res: ServerResponse) => void,
): WebFailure {
  return (err, req, res) => {
    logUpstreamError(log, err, req, 'upstream failed')
    if (res.headersSent) res.destroy()
    else respondError(503, req, res)
  }
}

/** Known network errors (the upstream went away) are logged without a stack, as CHP does. */
export function logUpstreamError(log: Logger, err: NodeJS.ErrnoException, req: IncomingMessage, msg: string): void {
  const fields = { method: req.method, path: logPath(req.url), code: err.code }
  if (err.code !== undefined && KNOWN_UPSTREAM_ERRORS.has(err.code)) log.warn({ ...fields, reason: err.message }, msg)
  else log.error({ ...fields, err }, msg)
}
