/**
 * The accept-queue sampler against real sockets: a listener in a child process that is stopped
 * (SIGSTOP) cannot accept, so the kernel queues every connection it completes; the sampler must
 * read exactly that many, and none once the child runs again and accepts them.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import { AcceptQueueSampler, acceptQueues, pacedDelayMs, parseProcNetTcp, SAMPLER_DUTY } from '../src/accept-queue.js'
import { parseLoadtestConfig } from '../src/config.js'
import { acceptQueueLine } from '../src/run.js'

const LISTENER = `
const server = require('node:net').createServer(s => { s.on('error', () => {}) })
server.listen(0, process.argv[1], () => process.stdout.write(server.address().port + '\\n'))
`

interface T { teardown(fn: () => unknown): void }

async function stoppedListener(t: T, host: string): Promise<{ port: number; pid: number; resume(): void }> {
  const child = spawn(process.execPath, ['-e', LISTENER, host], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = once(child, 'exit')
    try { process.kill(child.pid!, 'SIGCONT'); process.kill(child.pid!, 'SIGKILL') } catch { /* gone */ }
    await gone
  })
  const [line] = await once(child.stdout!, 'data') as [Buffer]
  const port = Number(String(line).trim())
  process.kill(child.pid!, 'SIGSTOP')
  return { port, pid: child.pid!, resume: () => process.kill(child.pid!, 'SIGCONT') }
}

async function connectAll(t: T, host: string, port: number, n: number): Promise<void> {
  const sockets = await Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(s))
    s.once('error', reject)
  })))
  t.teardown(() => { for (const s of sockets) s.destroy() })
}

async function until(check: () => Promise<boolean>, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise(r => setTimeout(r, 50))
  }
  return false
}

const linux = fs.existsSync('/proc/net/tcp')

t.test('a stopped listener: the sampler reads the queued connections, then none once they are accepted', { skip: !linux && 'needs /proc/net/tcp' }, async t => {
  const N = 7
  const l = await stoppedListener(t, '127.0.0.1')
  t.equal((await acceptQueues([l.port])).get(l.port), 0, 'listening, nothing waiting')
  // never spaced out: this test is about what a reading sees (the next test is about the spacing)
  const sampler = new AcceptQueueSampler({ hub: l.port, proxy: undefined }, { intervalMs: 20, duty: 1 })
  const onThisThread = new AcceptQueueSampler({ hub: l.port }, { intervalMs: 20, thread: false, duty: 1 })
  await Promise.all([sampler.start(), onThisThread.start()])
  await connectAll(t, '127.0.0.1', l.port, N)
  // the clients' handshakes are complete (connect fired): the kernel has queued them all
  t.equal((await acceptQueues([l.port])).get(l.port), N, `${N} connections wait to be accepted`)
  await new Promise(r => setTimeout(r, 200))
  l.resume()
  t.ok(await until(async () => (await acceptQueues([l.port])).get(l.port) === 0, 10_000), 'the listener, running again, accepted them')
  await new Promise(r => setTimeout(r, 100))
  await sampler.stop()
  await onThisThread.stop()
  t.equal(sampler.fallback, undefined, 'sampled in a worker thread')
  t.equal(onThisThread.summary().hub?.max, N, 'and the same on this thread')
  t.equal(onThisThread.summary().hub?.sampledOn, 'generator thread')
  const s = sampler.summary()
  t.equal(s.hub?.sampledOn, 'worker thread')
  t.equal(s.proxy, undefined, 'a port not given is not sampled')
  t.equal(s.hub?.port, l.port)
  t.equal(s.hub?.max, N, 'the maximum sampled is the queue')
  t.ok(s.hub!.samples >= 5, `sampled ${s.hub!.samples} times`)
  t.ok(s.hub!.nonEmpty > 0 && s.hub!.nonEmpty < 1, 'some samples saw the queue, some saw it empty')
  t.ok(s.hub!.perSecondMax.some(([, q]) => q === N))
  t.match(acceptQueueLine({ acceptQueue: { hub: s.hub } }), new RegExp(`accept queue hub max ${N} p99 \\d+, proxy -`))
})

t.test('IPv6 and a port nothing listens on', { skip: !linux && 'needs /proc/net/tcp' }, async t => {
  const v6 = await new Promise<boolean>(resolve => {
    const s = net.createServer().once('error', () => resolve(false)).listen(0, '::1', () => s.close(() => resolve(true)))
  })
  if (!v6) { t.pass('skipped: no IPv6 loopback here'); return }
  const l = await stoppedListener(t, '::1')
  await connectAll(t, '::1', l.port, 3)
  t.equal((await acceptQueues([l.port])).get(l.port), 3, 'read from /proc/net/tcp6')
  // a port of a closed listener: nothing listens there now
  const closed = await new Promise<number>(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
  t.equal((await acceptQueues([closed])).get(closed), undefined)
  l.resume()
})

t.test('the parser stops at the first socket that is not listening (the kernel lists listeners first)', { skip: !linux && 'needs /proc/net/tcp' }, async t => {
  // real text of this machine, with an established connection of ours in it
  const server = net.createServer(s => s.on('error', () => undefined)).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const port = (server.address() as net.AddressInfo).port
  await connectAll(t, '127.0.0.1', port, 1)
  const text = fs.readFileSync('/proc/net/tcp', 'latin1')
  const parsed = parseProcNetTcp(text)
  t.equal(parsed.done, true, 'a non-listening line was reached')
  t.ok(parsed.sockets.some(s => s.port === port), 'our listener is among the listeners')
  const states = text.split('\n').slice(1).filter(l => l.trim()).map(l => l.trim().split(/\s+/)[3])
  const firstOther = states.findIndex(s => s !== '0A')
  t.ok(firstOther >= 0 && states.slice(firstOther).every(s => s !== '0A'), 'every LISTEN line comes before every other line')
})

t.test('--workers: the flag, else FLEETHUB_WORKERS, else 1; fleethub only', async t => {
  t.equal(parseLoadtestConfig(['ramp'], {}).workers, 1)
  t.equal(parseLoadtestConfig(['ramp', '--workers', '2'], {}).workers, 2)
  t.equal(parseLoadtestConfig(['ramp'], { FLEETHUB_WORKERS: '3' }).workers, 3)
  t.equal(parseLoadtestConfig(['ramp', '--workers', '1'], { FLEETHUB_WORKERS: '3' }).workers, 1, 'the flag wins')
  t.throws(() => parseLoadtestConfig(['ramp', '--workers', '0'], {}), /--workers/)
  t.throws(() => parseLoadtestConfig(['ramp', '--workers', '2', '--target', 'jupyterhub'], {}), /--workers applies/)
})

t.test('readings that cost more are spaced out, so the sampler keeps to its share of a core', async t => {
  t.equal(pacedDelayMs(0.5, 100), 100, 'a cheap reading: the asked interval')
  t.equal(pacedDelayMs(40, 100, 1), 100, 'duty 1: never spaced out')
  t.equal(pacedDelayMs(40, 100), 760, 'a 40 ms reading (10,000 listeners): 760 ms between, 5% of a core')
  t.equal(SAMPLER_DUTY, 0.05)
})

t.test('with 3,000 other listeners the sampler still sees the queue, at a longer interval', { skip: !linux && 'needs /proc/net/tcp' }, async t => {
  // as a load test's virtual user servers: each listens on its own loopback address
  const others: net.Server[] = []
  t.teardown(() => { for (const s of others) s.close() })
  for (let i = 0; i < 3000; i++) {
    const s = net.createServer()
    await new Promise<void>(resolve => s.once('error', () => resolve()).listen(0, `127.97.${(i >> 8) & 255}.${(i & 255) || 255}`, () => resolve()))
    others.push(s)
  }
  const l = await stoppedListener(t, '127.0.0.1')
  // what one reading costs here (the median of 5): unpaced, readings would follow each other that fast
  const costs: number[] = []
  for (let i = 0; i < 5; i++) { const t0 = performance.now(); await acceptQueues([l.port]); costs.push(performance.now() - t0) }
  const cost = costs.sort((a, b) => a - b)[2]!
  const sampler = new AcceptQueueSampler({ hub: l.port }, { intervalMs: 1 })
  await sampler.start()
  await connectAll(t, '127.0.0.1', l.port, 4)
  await new Promise(r => setTimeout(r, 1500))
  await sampler.stop()
  l.resume()
  const s = sampler.summary().hub!
  t.equal(s.max, 4, 'the queue was seen')
  t.ok(s.intervalMs >= 5 * cost, `readings ${s.intervalMs} ms apart, a reading costing ${Math.round(cost * 10) / 10} ms (asked: 1 ms)`)
})
