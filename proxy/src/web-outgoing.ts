/**
 * The response passes of a web request, upstream response → client: the headers for the client, the
 * status line and headers written, the client response cut if the upstream's dies, the body piped
 * (`forwardResponse`, the lean path's order). The library path shares two of them:
 * `cutClientOnUpstreamAbort` and `recordActivity`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HOP_BY_HOP } from './hop-by-hop.js'
import type { Route } from './route-table.js'

/** The lean path's response passes, in order. */
export function forwardResponse(req: IncomingMessage, res: ServerResponse, up: IncomingMessage): void {
  writeStatusAndHeaders(req, res, up)
  cutClientOnUpstreamAbort(up, res)
  up.pipe(res)
}

function writeStatusAndHeaders(req: IncomingMessage, res: ServerResponse, up: IncomingMessage): void {
  res.writeHead(up.statusCode ?? 502, up.statusMessage, responseHeaders(up, req))
}

/**
 * The response headers for the client, as a flat [name, value, ...] list (duplicates such as
 * Set-Cookie kept, case kept): hop-by-hop ones removed except Transfer-Encoding for HTTP/1.1 clients,
 * which tells Node to chunk what it writes.
 */
function responseHeaders(up: IncomingMessage, req: IncomingMessage): string[] {
  const raw = up.rawHeaders
  const out: string[] = []
  const http11 = req.httpVersion === '1.1'
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(lower) && !(http11 && lower === 'transfer-encoding')) continue
    out.push(raw[i], raw[i + 1])
  }
  return out
}

const CLIENT_RES = Symbol('client response')
type TaggedUpstreamRes = IncomingMessage & { [CLIENT_RES]?: ServerResponse }

/**
 * An upstream that dies mid-response: pipe() does not pass the abort on, so the client would wait
 * forever on a response that will never end (found by leaks.test.ts). Cut the client response instead.
 * One shared listener and a symbol-keyed reference, not a closure per response.
 */
export function cutClientOnUpstreamAbort(up: IncomingMessage, res: ServerResponse): void {
  ;(up as TaggedUpstreamRes)[CLIENT_RES] = res
  up.once('close', onUpstreamResClose)
}

function onUpstreamResClose(this: TaggedUpstreamRes): void {
  const res = this[CLIENT_RES]
  this[CLIENT_RES] = undefined
  if (res !== undefined && !this.complete && !res.writableEnded) res.destroy()
}

const ROUTE = Symbol('route')
type TaggedRes = ServerResponse & { [ROUTE]?: Route }

/**
 * Activity as a plain number: a web response under 300 sets `route.lastActivity` when it finishes
 * (redirects and errors are not a user at work). Returns the pass, bound to the clock.
 */
export function createActivityRecorder(now: () => number): (res: ServerResponse, route: Route) => void {
  function onFinish(this: TaggedRes): void {
    const route = this[ROUTE]
    if (route !== undefined && this.statusCode < 300) route.lastActivity = now()
  }
  return (res, route) => {
    ;(res as TaggedRes)[ROUTE] = route
    res.once('finish', onFinish)
  }
}
