/** `fleethub singleuser` as a process (from dist/: run `npm run build` first). */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { builtInServerScript } from '../../src/local-process.js'
import { startHubPeer } from './hub-peer.js'

const CLI = builtInServerScript()
if (!existsSync(CLI)) throw new Error('run `npm run build` first: this test starts dist/cli/fleethub.js')

/** Run the CLI; resolves with its exit code and output. `onStdout` may act on the output as it comes. */
function run(t: Tap.Test, args: string[], env: Record<string, string>, onStdout?: (text: string, pid: number) => void): Promise<{ code: number | null, out: string }> {
  const child = spawn(process.execPath, [CLI, 'singleuser', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  const onData = (d: Buffer): void => { out += d.toString(); onStdout?.(out, child.pid!) }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000) // bounded, whatever happens
  return new Promise(resolve => child.once('close', code => { clearTimeout(timer); resolve({ code, out }) }))
}

async function envFor(t: Tap.Test, port: number): Promise<Record<string, string>> {
  const peer = await startHubPeer({ clientId: 'jupyterhub-user-alice', redirectUri: '/user/alice/oauth_callback' })
  t.teardown(() => peer.close())
  return {
    PATH: process.env.PATH ?? '', JUPYTERHUB_API_URL: peer.apiUrl, JUPYTERHUB_API_TOKEN: peer.apiToken, JUPYTERHUB_USER: 'alice',
    JUPYTERHUB_CLIENT_ID: 'jupyterhub-user-alice', JUPYTERHUB_OAUTH_CALLBACK_URL: '/user/alice/oauth_callback',
    JUPYTERHUB_SERVICE_URL: `http://127.0.0.1:${port}/user/alice/`,
  }
}

t.test('--help', async t => {
  const { code, out } = await run(t, ['--help'], { PATH: process.env.PATH ?? '' })
  t.equal(code, 0)
  t.match(out, /usage: fleethub singleuser/)
})

t.test('a bad environment exits 1 naming every missing variable', async t => {
  const { code, out } = await run(t, [], { PATH: process.env.PATH ?? '' })
  t.equal(code, 1)
  t.match(out, /SINGLEUSER_CONFIG_INVALID/)
  for (const name of ['JUPYTERHUB_USER', 'JUPYTERHUB_API_URL', 'JUPYTERHUB_API_TOKEN', 'JUPYTERHUB_CLIENT_ID', 'JUPYTERHUB_SERVICE_URL']) t.match(out, name)
})

t.test('a taken port exits 98 (the spawner retries elsewhere)', async t => {
  const squatter = createServer()
  await new Promise<void>(resolve => squatter.listen(0, '127.0.0.1', resolve))
  t.teardown(() => squatter.close())
  const { code, out } = await run(t, [], await envFor(t, (squatter.address() as { port: number }).port))
  t.equal(code, 98)
  t.match(out, /address already in use/)
})

t.test('SIGTERM stops it cleanly with exit 0, and tokens never reach the log', async t => {
  const free = createServer()
  await new Promise<void>(resolve => free.listen(0, '127.0.0.1', resolve))
  const port = (free.address() as { port: number }).port
  await new Promise<void>(resolve => free.close(() => resolve()))
  const env = await envFor(t, port)
  let signalled = false
  const { code, out } = await run(t, ['--log-level', 'debug'], env, (text, pid) => {
    if (!signalled && text.includes('single-user server listening')) { signalled = true; process.kill(pid, 'SIGTERM') }
  })
  t.ok(signalled, 'it came up')
  t.equal(code, 0)
  t.match(out, /"signal":"SIGTERM"/)
  t.notMatch(out, env.JUPYTERHUB_API_TOKEN, 'the API token is not logged')
})
