/**
 * GET /hub/api/users/<name>/server/progress (contract §6): an event stream of the spawn's progress.
 * A keep-alive `\n\n` at once and every 8 s; events as `data: <json>\n\n`; ends after ready/failed.
 * While the spawn waits in the admission queue, the user's place in line is sent when it changes.
 * A hub that drains ends its open streams early, with a short `retry:`: an EventSource (the
 * spawn-pending page) opens the stream again, on a hub that stays, and sees the spawn through.
 */
import type { Request, Response } from 'express'
import type { HubContext } from '../context.js'
import type { ServerRecord } from './server.repository.js'
import { findServerById } from './server.repository.js'
import { serverPrefix } from '../proxy/route-sync.js'
import type { ProgressEvent } from './progress.js'
import { HttpError } from '../errors.js'

const KEEPALIVE_MS = 8000
const QUEUE_TICK_MS = 1000
const MIRROR_CHECK_MS = 3000
/** How soon a client should reconnect a stream this hub ended because it is draining (SSE `retry`). */
const DRAIN_RETRY_MS = 500

function readyEvent(user: string, server: string): ProgressEvent {
  const url = serverPrefix(user, server)
  return { progress: 100, ready: true, message: `Server ready at ${url}`, html_message: `Server ready at <a href="${url}">${url}</a>`, url }
}

function open(res: Response): (e: ProgressEvent | null) => void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
  res.flushHeaders()
  return e => { res.write(e === null ? '\n\n' : `data: ${JSON.stringify(e)}\n\n`) }
}

export async function streamProgress(ctx: HubContext, req: Request, res: Response, server: ServerRecord | undefined): Promise<void> {
  if (!server) throw new HttpError('HUB_NOT_FOUND')
  if (server.state === 'running') {
    const send = open(res)
    send(readyEvent(server.userName, server.name))
    return void res.end()
  }
  const record = ctx.spawns.progressFor(server.id)
  if (server.state === 'stopped') {
    if (record?.done) {
      const send = open(res)
      send(record.events[record.events.length - 1]!)
      return void res.end()
    }
    if (server.lastError) {
      const send = open(res)
      send({ progress: 100, failed: true, message: `Spawn failed: ${server.lastError}` })
      return void res.end()
    }
    throw new HttpError('HUB_NOT_FOUND')
  }
  if (server.state === 'stopping') throw new HttpError('HUB_BAD_REQUEST', `${server.userName} is not starting...`)
  const send = open(res)
  send(null)
  let lastPosition = 0
  const keepalive = setInterval(() => send(null), KEEPALIVE_MS)
  let unsubscribe = () => {}
  let poll: NodeJS.Timeout | undefined
  let follow: NodeJS.Timeout | undefined
  let ended = false
  const finish = () => {
    if (ended) return
    ended = true
    clearInterval(keepalive)
    if (poll) clearInterval(poll)
    if (follow) clearInterval(follow)
    unsubscribe()
    ctx.draining?.removeEventListener('abort', onDrain)
    res.end()
  }
  // No final event: the spawn goes on (on this hub until it is done, or on another); the client
  // reconnects and follows it from wherever its request lands.
  const onDrain = () => { if (!ended) { res.write(`retry: ${DRAIN_RETRY_MS}\n\n`); finish() } }
  req.on('close', finish)
  if (ctx.draining?.aborted) return onDrain()
  ctx.draining?.addEventListener('abort', onDrain, { once: true })
  // Follow the server row until it settles: the spawn runs on another hub of the fleet.
  const followRow = (everyMs: number) => setInterval(async () => {
    const now = await findServerById(ctx.db, server.id).catch(() => undefined)
    if (ended || !now || now.state === 'pending') return
    send(now.state === 'running' ? readyEvent(server.userName, server.name) : { progress: 100, failed: true, message: `Spawn failed: ${now.lastError ?? 'stopped'}` })
    finish()
  }, everyMs)
  if (record) {
    unsubscribe = record.subscribe(e => {
      send(e)
      if (e.ready || e.failed) setImmediate(finish)
    })
    poll = setInterval(() => {
      const pos = record.queuePosition?.()
      if (pos !== undefined && pos !== lastPosition) {
        lastPosition = pos
        send({ progress: 0, message: `Waiting for a free slot: number ${pos} in line` })
      }
    }, QUEUE_TICK_MS)
    // A mirror of another hub's spawn (servers/progress-relay.ts) misses what was published while
    // this hub's listening connection was down: the row is the safety net.
    if (!ctx.spawns.runsSpawn(server.id)) follow = followRow(MIRROR_CHECK_MS)
    return
  }
  // Pending, but started by another hub replica that has sent nothing here yet: follow the row.
  poll = followRow(QUEUE_TICK_MS)
}
