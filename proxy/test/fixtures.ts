/** Test helpers (not a test file): real upstream servers and real proxies on 127.0.0.1:0. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { once } from 'node:events'
import { WebSocketServer, WebSocket } from 'ws'
import { parseProxyConfig } from '../src/config.js'
import { createProxy, type RunningProxy } from '../src/server.js'

export const TOKEN = 'test-token-0001'

export interface Upstream {
  readonly url: string
  readonly port: number
  readonly server: http.Server
  /** Sockets currently open towards this upstream. */
  readonly sockets: Set<Socket>
  close(): Promise<void>
}

/**
 * An upstream that answers JSON {name, method, url, headers} for every request, plus:
 * /sse: three events 100 ms apart; /status/<n>: that status; /hang: never answers;
 * websockets: echo with the name prefixed.
 */
export async function startUpstream(name: string, extra?: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<Upstream> {
  const sockets = new Set<Socket>()
  const server = http.createServer((req, res) => {
    if (extra?.(req, res) === true) return
    const path = (req.url ?? '').split('?')[0]
    if (path.endsWith('/sse')) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      let n = 0
      const timer = setInterval(() => {
        res.write(`data: ${n}\n\n`)
        if (++n === 3) { clearInterval(timer); res.end() }
      }, 100)
      res.on('close', () => clearInterval(timer))
      return
    }
    if (path.includes('/hang')) return
    const status = /\/status\/(\d{3})/.exec(path)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.writeHead(status ? Number(status[1]) : 200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }))
    })
  })
  server.on('connection', s => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${name}:${req.url}:${String(data)}`))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`, port, server, sockets,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}

export async function startTestProxy(flags: string[] = [], env: Record<string, string> = { CONFIGPROXY_AUTH_TOKEN: TOKEN }): Promise<RunningProxy> {
  const config = parseProxyConfig(['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', ...flags], env)
  return createProxy(config)
}

export async function addRoute(proxy: RunningProxy, path: string, body: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${proxy.apiUrl}/api/routes${path}`, {
    method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify(body),
  })
  await res.arrayBuffer()
  return res.status
}

/** Open a websocket and resolve once open (or reject with the handshake failure). */
export async function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)))
  })
  return ws
}

export async function wsRoundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message')
  ws.send(text)
  const [data] = await reply
  return String(data)
}

/** Poll `check` every 20 ms until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return false
}
