/** Starting and measuring the benchmark's child processes (upstream, CHP, our proxy) from outside. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const REPO = new URL('../../', import.meta.url).pathname

export interface Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly url: string
  readonly apiUrl: string
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

function stopper(proc: ChildProcess): () => Promise<void> {
  const exited = once(proc, 'exit')
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export async function startUpstream(): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'proxy/bench/upstream.ts')], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout!.on('data', c => { out += c })
  await waitFor(() => out.includes('\n'), 20_000, 'upstream')
  const { port } = JSON.parse(out.split('\n')[0]) as { port: number }
  return { name: 'upstream', proc, url: `http://127.0.0.1:${port}`, apiUrl: '', stop: stopper(proc) }
}

/** Our proxy from dist/; `flags`/`env` e.g. route-store mode; `onLog` sees its log lines (stdout). */
export async function startOurs(token: string, o: { flags?: string[]; env?: Record<string, string>; logLevel?: string; onLog?: (chunk: string) => void } = {}): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'))
  const ready = join(dir, 'ready.json')
  const main = join(REPO, 'dist/proxy/src/main.js')
  if (!existsSync(main)) throw new Error('dist/proxy/src/main.js missing: run npm run build first')
  const proc = spawn(process.execPath, [main, '--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0',
    '--ready-file', ready, '--log-level', o.logLevel ?? 'warn', ...(o.flags ?? [])],
  { env: { ...process.env, ...o.env, CONFIGPROXY_AUTH_TOKEN: token }, stdio: ['ignore', o.onLog ? 'pipe' : 'ignore', 'inherit'] })
  if (o.onLog) proc.stdout!.setEncoding('utf8').on('data', o.onLog)
  await waitFor(() => existsSync(ready), 60_000, 'our proxy')
  const info = JSON.parse(readFileSync(ready, 'utf8')) as { port: number, apiPort: number }
  const stop = stopper(proc)
  return { name: 'fleethub', proc, url: `http://127.0.0.1:${info.port}`, apiUrl: `http://127.0.0.1:${info.apiPort}`,
    stop: async () => { await stop(); rmSync(dir, { recursive: true, force: true }) } }
}

export async function startChp(token: string): Promise<Child> {
  const port = await freePort()
  const apiPort = await freePort()
  const bin = join(REPO, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy')
  const proc = spawn(process.execPath, [bin, '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort),
    '--log-level', 'warn'], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: token }, stdio: ['ignore', 'ignore', 'inherit'] })
  const apiUrl = `http://127.0.0.1:${apiPort}`
  await waitFor(async () => {
    try { return (await fetch(`${apiUrl}/api/routes`, { headers: { authorization: `token ${token}` } })).status === 200 } catch { return false }
  }, 20_000, 'CHP')
  return { name: 'chp', proc, url: `http://127.0.0.1:${port}`, apiUrl, stop: stopper(proc) }
}

/** Resident set size of a process, bytes. */
export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith('VmRSS:'))
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) * 1024
}

export function socketFds(pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++ } catch { /* raced */ }
  }
  return n
}

export function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(l => l.startsWith('Max open files'))
  return Number(line?.split(/\s+/)[3] ?? NaN)
}
