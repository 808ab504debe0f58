import t from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { createKubeSim, podHostsFor, podHostsRuntime } from '../src/index.js'
import { parseKubeSimConfig } from '../src/config.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

interface HostStats { slot: number; pid: number; ready: boolean; containers: number; starting: number }

async function api(url: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${p}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

async function until<T>(f: () => Promise<T | undefined> | T | undefined, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const v = await f()
    if (v !== undefined && v !== false) return v
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const hostsOf = async (url: string): Promise<HostStats[]> => (await api(url, 'GET', '/sim/stats')).body.runtime.podHosts
const phaseOf = async (url: string, name: string): Promise<any> => (await api(url, 'GET', `/api/v1/namespaces/hub/pods/${name}`)).body
const waitPhase = (url: string, name: string, phase: string): Promise<any> =>
  until(async () => { const p = await phaseOf(url, name); return p.status?.phase === phase ? p : undefined }, `${name} ${phase}`)

/** Whether the pod's server still accepts connections. */
async function answers(ip: string, user: string): Promise<number | undefined> {
  try { return (await fetch(`http://${ip}:8888/user/${user}/`, { redirect: 'manual', signal: AbortSignal.timeout(3000) })).status } catch { return undefined }
}

/** Gone: no such process, or a zombie (an orphan reparented to a PID 1 that does not reap). */
function gone(pid: number): boolean {
  try { process.kill(pid, 0) } catch (err) { return (err as NodeJS.ErrnoException).code === 'ESRCH' }
  try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true } catch { return true }
}

function singleUserPod(name: string, hubApi: string): unknown {
  const env = { JUPYTERHUB_USER: name, JUPYTERHUB_API_URL: hubApi, JUPYTERHUB_API_TOKEN: 'tok', JUPYTERHUB_CLIENT_ID: `jupyterhub-user-${name}`,
    JUPYTERHUB_OAUTH_CALLBACK_URL: `/user/${name}/oauth_callback`, JUPYTERHUB_SERVICE_URL: `http://0.0.0.0:8888/user/${name}/`, JUPYTERHUB_ACTIVITY_INTERVAL: '0' }
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { containers: [{ name: 'notebook', image: 'img:1', ports: [{ containerPort: 8888 }], env: Object.entries(env).map(([n, value]) => ({ name: n, value })) }] } }
}

t.test('--pod-hosts parsing and auto sizing', async t => {
  t.equal(parseKubeSimConfig([], {}).podHosts, 0)
  t.equal(parseKubeSimConfig(['--pod-hosts', '3'], {}).podHosts, 3)
  t.equal(parseKubeSimConfig(['--pod-hosts', 'auto', '--runtime', 'singleuser'], {}).podHosts, 'auto')
  t.throws(() => parseKubeSimConfig(['--pod-hosts', 'many'], {}), /--pod-hosts must be auto or an integer in \[0, 64\], not 'many'/)
  t.throws(() => parseKubeSimConfig(['--pod-hosts', '-1'], {}), /--pod-hosts/)
  t.throws(() => parseKubeSimConfig(['--pod-hosts', '2', '--runtime', 'none'], {}), /--pod-hosts needs --runtime http or singleuser/)
  // this machine's 20,000: (20000 - 100) / 3 = 6633 pods a host
  t.equal(podHostsFor(1100, 20_000), 1)
  t.equal(podHostsFor(20_000, 20_000), 4)
  t.equal(podHostsFor(1_000_000, 20_000), 8, 'capped')
  t.equal(podHostsFor(0, 20_000), 1, 'at least one')
  t.equal(podHostsFor(5000, undefined), 1, 'limit unknown (not Linux)')
})

t.test('pods spread over two host processes; a killed host is replaced and nothing hangs', async t => {
  // A hub for the servers' start-up version check (GET <api url>, no auth); under /slow/ it is held, to catch a start in flight.
  const held: ServerResponse[] = []
  const hub = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/slow/') === true) { held.push(res); return }
    res.writeHead(200, { 'x-jupyterhub-version': '3.0.0', 'content-type': 'application/json' }); res.end('{}')
  })
  await new Promise<void>(resolve => hub.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { hub.close(() => resolve()); hub.closeAllConnections() }))
  const hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`
  const hubApi = `${hubUrl}/hub/api`
  const runtime = podHostsRuntime(pino({ level: 'silent' }), { hosts: 2, extra: { hubRetryDelaysMs: [100, 200] }, logLevel: 'silent', killAfterMs: 2000 })
  const s = await createKubeSim({ namespaces: ['hub'], runtime })
  t.teardown(() => s.close())
  const seenPids = new Set<number>()

  const names = Array.from({ length: 20 }, (_, i) => `u${i}`)
  const created: number[] = []
  for (const n of names) created.push((await api(s.url, 'POST', '/api/v1/namespaces/hub/pods', singleUserPod(n, hubApi))).status)
  t.same(created, names.map(() => 201))
  const running = await Promise.all(names.map(n => waitPhase(s.url, n, 'Running')))
  const ips = new Map(running.map(p => [p.metadata.name as string, p.status.podIP as string]))
  const [a, b] = await hostsOf(s.url)
  for (const h of [a!, b!]) seenPids.add(h.pid)
  t.not(a!.pid, b!.pid, 'two processes')
  t.not(a!.pid, process.pid)
  t.same([a!.containers, b!.containers], [10, 10], 'spread evenly')
  const statuses: Array<number | undefined> = []
  for (const n of names) statuses.push(await answers(ips.get(n)!, n))
  t.same(statuses, names.map(() => 302), 'every pod answers (sends the browser to the hub\'s OAuth)')

  // Deleting pods stops their servers.
  for (const n of names.slice(0, 4)) await api(s.url, 'DELETE', `/api/v1/namespaces/hub/pods/${n}?gracePeriodSeconds=0`)
  for (const n of names.slice(0, 4)) await until(async () => await answers(ips.get(n)!, n) === undefined ? true : undefined, `${n} to stop`)
  t.equal((await hostsOf(s.url)).reduce((sum, h) => sum + h.containers, 0), 16)

  // SIGKILL host a: exactly its pods stop answering, a new host takes its slot.
  const before = await hostsOf(s.url)
  process.kill(a!.pid, 'SIGKILL')
  const replaced = await until(async () => { const hs = await hostsOf(s.url); return hs[0]!.pid !== a!.pid && hs[0]!.ready ? hs : undefined }, 'a replacement host')
  seenPids.add(replaced[0]!.pid)
  t.equal(replaced[0]!.containers, 0)
  t.equal(replaced[1]!.pid, b!.pid, 'the other host is untouched')
  let silent = 0
  for (const n of names.slice(4)) if (await answers(ips.get(n)!, n) === undefined) silent++
  t.equal(silent, before[0]!.containers, 'the killed host\'s pods, and only those, no longer answer')

  // New pods start on the replacement (it has the fewest).
  for (const n of ['v0', 'v1', 'v2']) await api(s.url, 'POST', '/api/v1/namespaces/hub/pods', singleUserPod(n, hubApi))
  for (const n of ['v0', 'v1', 'v2']) t.equal(await answers((await waitPhase(s.url, n, 'Running')).status.podIP, n), 302, `${n} answers`)
  t.equal((await hostsOf(s.url))[0]!.containers, 3)

  // A host killed while a container is starting: the start fails (the pod too), nothing waits forever.
  await api(s.url, 'POST', '/api/v1/namespaces/hub/pods', singleUserPod('slow', `${hubUrl}/slow/hub/api`))
  const busy = await until(async () => (await hostsOf(s.url)).find(h => h.starting > 0), 'a start in flight')
  await until(() => held.length > 0 || undefined, 'the held version check')
  process.kill(busy.pid, 'SIGKILL')
  const failed = await waitPhase(s.url, 'slow', 'Failed')
  t.match(failed.status.containerStatuses[0].state.terminated, { reason: 'StartError', message: /pod host \d+ exited \(signal SIGKILL\)/ })
  const after = await until(async () => { const hs = await hostsOf(s.url); return hs.every(h => h.ready && h.pid !== busy.pid) ? hs : undefined }, 'a second replacement')
  for (const h of after) seenPids.add(h.pid)
  t.equal((await api(s.url, 'GET', '/sim/stats')).body.runtime.podHostsReplaced, 2)
  for (const res of held) res.destroy()

  await s.close()
  t.ok([...seenPids].every(gone), 'no host outlives close()')
})

t.test('fleethub kube-sim --pod-hosts 2: hosts exit when kube-sim is killed', async t => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'cli/fleethub.ts'), 'kube-sim', '--pod-hosts', '2', '--runtime', 'http', '--nodes', '1', '--namespace', 'hub', '--log-level', 'warn'],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  const url = await until(() => /kube-sim listening on (http:\/\/\S+)/.exec(out)?.[1], 'kube-sim to listen', 20_000)
  const hosts = await until(async () => { const hs = await hostsOf(url); return hs.every(h => h.ready) ? hs : undefined }, 'ready hosts')
  t.equal(hosts.length, 2)
  await api(url, 'POST', '/api/v1/namespaces/hub/pods', singleUserPod('alice', 'http://127.0.0.1:9/hub/api'))
  const pod = await waitPhase(url, 'alice', 'Running')
  t.match(await (await fetch(`http://${pod.status.podIP}:8888/`)).json(), { pod: 'alice' }, 'the pod answers from its host')
  child.kill('SIGKILL')
  await until(() => hosts.every(h => gone(h.pid)) || undefined, 'the hosts to exit', 5000)
  t.pass('the hosts exited with kube-sim')
})
