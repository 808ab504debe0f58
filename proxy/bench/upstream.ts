/**
 * The benchmark's upstream, run as its own process: a trivial keep-alive HTTP server (a 40-byte JSON
 * body, like a small Jupyter API answer) and a websocket echo. Prints {"port":N} on stdout once listening.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

const BODY = JSON.stringify({ status: 'ok', kernels: 1, connections: 2 })
const server = http.createServer({ keepAlive: true, keepAliveTimeout: 30_000 }, (_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(BODY) })
  res.end(BODY)
})
server.keepAliveTimeout = 30_000
const wss = new WebSocketServer({ server, perMessageDeflate: false })
wss.on('connection', ws => { ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })) })
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
})
process.on('SIGTERM', () => process.exit(0))
