/** The compiled CLI (dist/proxy/src/main.js; run `npm run build` first) as the hub runs it: a child process. */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, TOKEN } from './fixtures.js'

const MAIN = fileURLToPath(new URL('../../dist/proxy/src/main.js', import.meta.url))

t.test('CLI: --ready-file, --pid-file, API, SIGTERM -> exit 0 and files removed', { skip: existsSync(MAIN) ? false : 'run npm run build first' }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-proxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ready = join(dir, 'ready.json')
  const pidFile = join(dir, 'proxy.pid')
  const child = spawn(process.execPath, [MAIN, '--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0',
    '--ready-file', ready, '--pid-file', pidFile, '--log-level', 'warn'], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: 'ignore' })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  t.ok(await eventually(() => existsSync(ready), 15_000), 'ready file written')
  const info = JSON.parse(readFileSync(ready, 'utf8')) as { port: number, apiPort: number, pid: number, bootId: string }
  t.equal(info.pid, child.pid)
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(child.pid))
  const res = await fetch(`http://127.0.0.1:${info.apiPort}/api/routes`, { headers: { authorization: `token ${TOKEN}` } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-fleethub-proxy-boot'), info.bootId)
  await res.text()
  const health = await fetch(`http://127.0.0.1:${info.port}/_chp_healthz`)
  t.same(await health.json(), { status: 'OK', bootId: info.bootId })
  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0)
  t.notOk(existsSync(ready), 'ready file removed')
  t.notOk(existsSync(pidFile), 'pid file removed')
})

t.test('CLI: --help exits 0, bad flags exit 2 with the reason', { skip: existsSync(MAIN) ? false : 'run npm run build first' }, async t => {
  const run = async (args: string[]): Promise<{ code: number | null, out: string, err: string }> => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', c => { out += c })
    child.stderr.on('data', c => { err += c })
    const [code] = await once(child, 'exit') as [number | null]
    return { code, out, err }
  }
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /usage: fleethub-proxy/)
  const bad = await run(['--port', 'nope', '--socket', '/tmp/x'])
  t.equal(bad.code, 2)
  t.match(bad.err, /--port must be an integer/)
  t.match(bad.err, /--socket/)
})
