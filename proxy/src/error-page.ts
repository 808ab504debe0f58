/**
 * Error answers on the public port (contract §2.6): the plain status text, a page from
 * `--error-path`, or one fetched from `--error-target` (`GET <target>/<code>?url=<original>`), answered
 * with the original status and only that page's Content-Type/Content-Encoding and body.
 * CHP #557: the error target's responses were not always consumed, leaking sockets to the hub until
 * the ephemeral ports ran out. Here every response is either piped to the client or drained, and
 * destroyed if the client goes away first.
 */
import { readFile } from 'node:fs/promises'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import { join } from 'node:path'
import type { Logger } from './log.js'

/** An error page that takes longer than this is abandoned for the plain text. */
export const ERROR_TARGET_TIMEOUT_MS = 10_000

export interface ErrorResponder {
  respond(code: number, req: IncomingMessage, res: ServerResponse): void
  close(): void
}

export interface ErrorResponderOptions {
  readonly errorTarget: string | undefined
  readonly errorPath: string | undefined
  readonly insecure: boolean
  readonly log: Logger
}

export function createErrorResponder(options: ErrorResponderOptions): ErrorResponder {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 4000 })
  const tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 4000, rejectUnauthorized: !options.insecure })
  return {
    respond(code, req, res) {
      if (res.writableEnded || res.destroyed) return
      if (options.errorTarget !== undefined) fetchErrorTarget(options.errorTarget, code, req, res, options.log, agent, tlsAgent)
      else if (options.errorPath !== undefined) void serveErrorFile(options.errorPath, code, res, options.log)
      else renderPlain(code, res)
    },
    close() {
      agent.destroy()
      tlsAgent.destroy()
    },
  }
}

/** CHP's default: status line and its reason phrase as the body. */
export function renderPlain(code: number, res: ServerResponse): void {
  if (res.writableEnded || res.destroyed) return
  if (!res.headersSent) res.writeHead(code)
  res.end(http.STATUS_CODES[code])
}

export function errorTargetUrl(errorTarget: string, code: number, originalUrl: string): URL {
  const url = new URL(errorTarget)
  url.pathname = `${url.pathname}${code}`
  url.search = ''
  url.searchParams.set('url', originalUrl)
  return url
}

function fetchErrorTarget(
  errorTarget: string, code: number, req: IncomingMessage, res: ServerResponse, log: Logger,
  agent: http.Agent, tlsAgent: https.Agent,
): void {
  const url = errorTargetUrl(errorTarget, code, req.url ?? '/')
  const secure = url.protocol === 'https:'
  const upstreamReq = (secure ? https : http).request(url, { method: 'GET', agent: secure ? tlsAgent : agent })
  upstreamReq.setTimeout(ERROR_TARGET_TIMEOUT_MS, () => upstreamReq.destroy(new Error('error target timed out')))
  let complete = false
  // The client left before the page arrived: drop the request (never leave it half-read).
  const onClientGone = (): void => { if (!complete) upstreamReq.destroy() }
  res.once('close', onClientGone)
  upstreamReq.on('response', (page: IncomingMessage) => {
    page.once('end', () => { complete = true })
    if (res.writableEnded || res.destroyed) {
      page.resume()
      return
    }
    for (const key of ['content-type', 'content-encoding'] as const) {
      const value = page.headers[key]
      if (value !== undefined) res.setHeader(key, value)
    }
    res.writeHead(code)
    page.pipe(res)
    page.on('error', () => res.destroy())
  })
  upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
    res.removeListener('close', onClientGone)
    if (res.destroyed) return
    log.error({ code: err.code, msg: err.message }, 'failed to get custom error page')
    if (res.headersSent) res.destroy()
    else renderPlain(code, res)
  })
  upstreamReq.end()
}

async function serveErrorFile(dir: string, code: number, res: ServerResponse, log: Logger): Promise<void> {
  for (const name of [`${code}.html`, 'error.html']) {
    try {
      const page = await readFile(join(dir, name))
      if (res.writableEnded || res.destroyed) return
      res.writeHead(code, { 'Content-Type': 'text/html' })
      res.end(page)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.error({ err, dir, name }, 'failed to read error page')
    }
  }
  renderPlain(code, res)
}
