/** Test helper (not a test file): our proxy as a real child process (via tsx, no build needed), to read its /proc/<pid>/fd. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, TOKEN } from './fixtures.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

export interface ChildProxy {
  readonly pid: number
  readonly url: string
  readonly apiUrl: string
  readonly child: ChildProcess
  /** Open socket file descriptors of the proxy process (pipes, timers and the like are not counted). */
  fdCount(): number
  /** A gauge or counter value from the proxy's own /metrics. */
  metric(name: string): Promise<number>
  close(): Promise<void>
}

export async function startChildProxy(flags: string[], env: Record<string, string> = {}): Promise<ChildProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-proxy-child-'))
  const ready = join(dir, 'ready.json')
  // FLEETHUB_PROXY_MAIN: run the same tests against another build of the proxy (how the forwarding
  // library was chosen: a copy of proxy/src with http-proxy 1.18.1 swapped in, see forward.ts).
  const main = process.env.FLEETHUB_PROXY_MAIN ?? join(REPO, 'proxy/src/main.ts')
  const child = spawn(process.execPath, ['--import', 'tsx', main,
    '--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--ready-file', ready, '--log-level', 'silent', ...flags],
  { cwd: REPO, env: { ...process.env, ...env, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = once(child, 'exit')
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  if (!(await eventually(() => existsSync(ready) || child.exitCode !== null, 20_000)) || !existsSync(ready)) {
    await close()
    throw new Error('proxy child did not become ready')
  }
  const info = JSON.parse(readFileSync(ready, 'utf8')) as { port: number, apiPort: number }
  return {
    pid: child.pid!,
    url: `http://127.0.0.1:${info.port}`,
    apiUrl: `http://127.0.0.1:${info.apiPort}`,
    child,
    fdCount: () => socketFds(child.pid!),
    metric: async name => {
      const text = await (await fetch(`http://127.0.0.1:${info.apiPort}/metrics`)).text()
      const line = text.split('\n').find(l => l.startsWith(`${name} `))
      return line === undefined ? NaN : Number(line.split(' ')[1])
    },
    close,
  }
}

function socketFds(pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++
    } catch { /* closed while listing */ }
  }
  return n
}
