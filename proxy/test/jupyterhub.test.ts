/**
 * A real JupyterHub 3.0 (Debian's /usr/bin/jupyterhub) uses our proxy in place of CHP: it starts
 * dist/proxy/src/main.js itself with CHP's flags, a user logs in through our public port, spawns a
 * (tiny python) server, reaches it through us, and stopping it removes the route from our table.
 * Needs `npm run build` first; skipped with a reason when jupyterhub is not installed.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually } from './fixtures.js'

const JUPYTERHUB = '/usr/bin/jupyterhub'
const MAIN = fileURLToPath(new URL('../../dist/proxy/src/main.js', import.meta.url))
const skip = !existsSync(JUPYTERHUB) ? `${JUPYTERHUB} is not installed (apt-get install jupyterhub)`
  : !existsSync(MAIN) ? 'dist/proxy/src/main.js missing: run npm run build first' : false

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

const SERVER_PY = `
import http.server, os, urllib.parse
url = urllib.parse.urlparse(os.environ['JUPYTERHUB_SERVICE_URL'])
prefix = os.environ['JUPYTERHUB_SERVICE_PREFIX']
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('tiny server for %s at %s' % (prefix, self.path)).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((url.hostname, url.port), Handler).serve_forever()
`

function hubConfig(dir: string, ports: { pub: number, api: number, hub: number }): string {
  return `
import sys
from jupyterhub.spawner import LocalProcessSpawner

class TinySpawner(LocalProcessSpawner):
    """Runs server.py as the hub's own user (no system user per hub user)."""
    def make_preexec_fn(self, name):
        return None
    def user_env(self, env):
        env['HOME'] = ${JSON.stringify(dir)}
        return env

c.JupyterHub.bind_url = 'http://127.0.0.1:${ports.pub}'
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = ${ports.hub}
c.JupyterHub.db_url = 'sqlite:///${join(dir, 'jupyterhub.sqlite')}'
c.JupyterHub.cookie_secret_file = ${JSON.stringify(join(dir, 'cookie_secret'))}
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = 'pw-for-tests'
c.JupyterHub.spawner_class = TinySpawner
c.Spawner.cmd = [sys.executable, ${JSON.stringify(join(dir, 'server.py'))}]
c.Spawner.start_timeout = 30
c.Spawner.http_timeout = 30
c.ConfigurableHTTPProxy.command = [${JSON.stringify(process.execPath)}, ${JSON.stringify(MAIN)}]
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${ports.api}'
c.ConfigurableHTTPProxy.auth_token = 'proxy-token-for-tests'
c.ConfigurableHTTPProxy.pid_file = ${JSON.stringify(join(dir, 'proxy.pid'))}
c.JupyterHub.services = [{'name': 'tester', 'api_token': 'tester-token-0001', 'admin': True}]
`
}

/** A minimal cookie jar: name=value pairs from Set-Cookie, sent back on every request. */
class Jar {
  readonly #cookies = new Map<string, string>()
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair.indexOf('=')
      this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1))
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }
}

t.test('JupyterHub 3.0 runs on our proxy', { skip, timeout: 120_000 }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-jhub-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ports = { pub: await freePort(), api: await freePort(), hub: await freePort() }
  writeFileSync(join(dir, 'server.py'), SERVER_PY)
  writeFileSync(join(dir, 'jupyterhub_config.py'), hubConfig(dir, ports))
  let logs = ''
  const hub = spawn(JUPYTERHUB, ['-f', join(dir, 'jupyterhub_config.py')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  hub.stdout.on('data', c => { logs += c })
  hub.stderr.on('data', c => { logs += c })
  const hubExited = once(hub, 'exit')
  t.teardown(async () => {
    if (hub.exitCode === null && hub.signalCode === null) {
      hub.kill('SIGTERM')
      const timer = setTimeout(() => hub.kill('SIGKILL'), 10_000)
      await hubExited
      clearTimeout(timer)
    }
    // If the hub died without stopping the proxy it started, stop that one process by its pid.
    const pidFile = join(dir, 'proxy.pid')
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim())
      try { process.kill(pid, 'SIGTERM') } catch { /* already gone */ }
    }
  })
  const pub = `http://127.0.0.1:${ports.pub}`
  const api = `http://127.0.0.1:${ports.api}`
  const proxyAuth = { authorization: 'token proxy-token-for-tests' }

  const up = await eventually(async () => {
    try {
      const res = await fetch(`${pub}/hub/login`)
      await res.text()
      return res.status === 200
    } catch { return false }
  }, 45_000)
  if (!up) t.comment(logs.slice(-3000))
  t.ok(up, 'hub login page served through our proxy')
  if (!up) return
  const proxyPid = Number(readFileSync(join(dir, 'proxy.pid'), 'utf8').trim())
  t.match(readFileSync(`/proc/${proxyPid}/cmdline`, 'utf8').split('\0'), [process.execPath, MAIN], 'the proxy JupyterHub started is ours')
  const routes0 = await (await fetch(`${api}/api/routes`, { headers: proxyAuth })).json() as Record<string, Record<string, unknown>>
  t.match(routes0['/'], { hub: true, jupyterhub: true, target: `http://127.0.0.1:${ports.hub}` }, 'the hub registered its route with us')

  const jar = new Jar()
  const login = await fetch(`${pub}/hub/login?next=`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'username=alice&password=pw-for-tests',
  })
  await login.text()
  t.equal(login.status, 302, 'login redirects')
  jar.take(login)
  t.match(jar.header(), /jupyterhub-session-id=/)

  const spawnRes = await fetch(`${pub}/hub/spawn`, { redirect: 'manual', headers: { cookie: jar.header() } })
  await spawnRes.text()
  t.ok([302, 303].includes(spawnRes.status), `spawn redirects (${spawnRes.status})`)

  const routed = await eventually(async () => {
    const routes = await (await fetch(`${api}/api/routes`, { headers: proxyAuth })).json() as Record<string, unknown>
    return '/user/alice' in routes
  }, 30_000)
  if (!routed) t.comment(logs.slice(-3000))
  t.ok(routed, 'the hub added /user/alice to our table')
  const page = await fetch(`${pub}/user/alice/tree?x=1`, { headers: { cookie: jar.header() } })
  t.equal(page.status, 200)
  t.equal(await page.text(), 'tiny server for /user/alice/ at /user/alice/tree?x=1', 'reached the user server through our proxy')

  // The hub's error pages through --error-target: a route to a dead server answers 503 with the hub's page.
  await (await fetch(`${api}/api/routes/probe/dead`, { method: 'POST', headers: proxyAuth, body: '{"target":"http://127.0.0.1:9"}' })).text()
  const dead = await fetch(`${pub}/probe/dead/x?y=1`)
  t.equal(dead.status, 503)
  t.match(dead.headers.get('content-type') ?? '', /text\/html/)
  t.match(await dead.text(), /503/, "the hub's error page")

  const stop = await fetch(`${pub}/hub/api/users/alice/server`, { method: 'DELETE', headers: { authorization: 'token tester-token-0001' } })
  await stop.text()
  t.ok([202, 204].includes(stop.status), `stop accepted (${stop.status})`)
  const gone = await eventually(async () => {
    const routes = await (await fetch(`${api}/api/routes`, { headers: proxyAuth })).json() as Record<string, unknown>
    return !('/user/alice' in routes) && '/' in routes
  }, 30_000)
  t.ok(gone, 'the route went away, the hub route stayed')
  const after = await fetch(`${pub}/user/alice/tree`, { redirect: 'manual' })
  await after.text()
  t.equal(after.status, 302, 'the user path now reaches the hub (server not running)')
  t.match(after.headers.get('location') ?? '', /\/hub\/user\/alice\/tree/)

  hub.kill('SIGTERM')
  await hubExited
  t.ok(await eventually(() => !existsSync(`/proc/${proxyPid}`), 10_000), 'the hub stopped our proxy on shutdown')
})
