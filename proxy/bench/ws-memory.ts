/**
 * Memory per open websocket, fleethub proxy vs configurable-http-proxy, measured two ways:
 * RSS growth (what an operator sees, but it moves with GC timing and the machine's load), and the
 * live JS heap after a full GC (a heap snapshot forces one), which is what each proxy really keeps
 * per tunnel. Alternating rounds, fresh processes each round.
 *
 *   node --import tsx proxy/bench/ws-memory.ts [--ws 3000] [--rounds 2] [--out bench-results/proxy-ws-memory-<date>]
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'
import { REPO, rssBytes, startChp, startOurs, startUpstream, type Child } from './processes.js'

const { values } = parseArgs({ options: { ws: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '2' }, out: { type: 'string' } } })
const N = Number(values.ws)
const ROUNDS = Number(values.rounds)
const log = (msg: string) => process.stderr.write(`[ws-memory ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)

/** Total self size of every node in a V8 heap snapshot, bytes. */
function liveHeapBytes(file: string): number {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] }
  const fields = snap.snapshot.meta.node_fields
  const size = fields.indexOf('self_size')
  let total = 0
  for (let i = size; i < snap.nodes.length; i += fields.length) total += snap.nodes[i]!
  return total
}

/** SIGUSR2 makes the proxy (started with --heapsnapshot-signal) GC and write a snapshot into its cwd. */
async function snapshot(pid: number, dir: string): Promise<number> {
  const before = new Set(fs.readdirSync(dir))
  process.kill(pid, 'SIGUSR2')
  for (let i = 0; i < 600; i++) {
    const fresh = fs.readdirSync(dir).filter(f => f.endsWith('.heapsnapshot') && !before.has(f))
    // the file is complete when its size stops changing
    if (fresh.length > 0) {
      const file = path.join(dir, fresh[0]!)
      const s1 = fs.statSync(file).size
      await new Promise(r => setTimeout(r, 500))
      if (s1 > 0 && fs.statSync(file).size === s1) {
        const bytes = liveHeapBytes(file)
        fs.rmSync(file)
        return bytes
      }
    } else await new Promise(r => setTimeout(r, 100))
  }
  throw new Error('no heap snapshot within 60 s')
}

async function measure(which: 'chp' | 'fleethub', upstream: Child, work: string): Promise<Record<string, number>> {
  const saved = process.env.NODE_OPTIONS
  process.env.NODE_OPTIONS = `${saved ?? ''} --heapsnapshot-signal=SIGUSR2`.trim()
  const cwd = process.cwd()
  process.chdir(work) // both proxies inherit the cwd; snapshots land there
  const proxy = which === 'chp' ? await startChp('bench-token') : await startOurs('bench-token')
  process.chdir(cwd)
  if (saved === undefined) delete process.env.NODE_OPTIONS
  else process.env.NODE_OPTIONS = saved
  const sockets: WebSocket[] = []
  try {
    const res = await fetch(`${proxy.apiUrl}/api/routes/user/a`, { method: 'POST', headers: { authorization: 'token bench-token' }, body: JSON.stringify({ target: upstream.url }) })
    if (res.status !== 201) throw new Error(`route add: ${res.status}`)
    const pid = proxy.proc.pid!
    // warm up both the HTTP and websocket paths once, so the baseline holds the code, not just the process
    await openSome(proxy, 10, sockets)
    await Promise.all(sockets.splice(0).map(w => new Promise(r => { w.once('close', r); w.close() })))
    const heap0 = await snapshot(pid, work)
    const rss0 = rssBytes(pid)
    for (let i = 0; i < N; i += 100) await openSome(proxy, Math.min(100, N - i), sockets)
    await Promise.all(sockets.map(w => new Promise<void>(r => { w.once('message', () => r()); w.send('x'.repeat(100)) })))
    await new Promise(r => setTimeout(r, 3000))
    const rss1 = rssBytes(pid)
    const heap1 = await snapshot(pid, work)
    return { rssKbPerWs: (rss1 - rss0) / 1024 / N, liveHeapKbPerWs: (heap1 - heap0) / 1024 / N, rssMbAtN: rss1 / 2 ** 20, liveHeapMbAtN: heap1 / 2 ** 20 }
  } finally {
    for (const w of sockets) w.terminate()
    await proxy.stop()
  }
}

async function openSome(proxy: Child, n: number, into: WebSocket[]): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
    const w = new WebSocket(`${proxy.url.replace('http', 'ws')}/user/a/ws`)
    w.once('open', () => { into.push(w); resolve() })
    w.once('error', reject)
  })))
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]! }
const r2 = (x: number) => Math.round(x * 100) / 100

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleethub-ws-memory-'))
  const upstream = await startUpstream()
  const runs: Record<string, Array<Record<string, number>>> = { chp: [], fleethub: [] }
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const which of ['chp', 'fleethub'] as const) {
        log(`round ${round}/${ROUNDS}: ${which}, ${N} websockets`)
        const m = await measure(which, upstream, work)
        log(`  ${which}: RSS ${r2(m.rssKbPerWs!)} KB/ws, live heap ${r2(m.liveHeapKbPerWs!)} KB/ws`)
        runs[which]!.push(m)
      }
    }
  } finally {
    await upstream.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
  const summary = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, {
    rssKbPerWs: r2(median(rs.map(r => r.rssKbPerWs!))), liveHeapKbPerWs: r2(median(rs.map(r => r.liveHeapKbPerWs!))),
  }]))
  const date = new Date().toISOString().slice(0, 10)
  const out = values.out ?? path.join(REPO, 'bench-results', `proxy-ws-memory-${date}`)
  fs.mkdirSync(out, { recursive: true })
  const machine = { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadavg: os.loadavg().map(l => r2(l)) }
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify({ date: new Date().toISOString(), command: `node --import tsx proxy/bench/ws-memory.ts --ws ${N} --rounds ${ROUNDS}`, machine, websockets: N, runs, summary }, null, 2) + '\n')
  const s = summary as Record<string, { rssKbPerWs: number; liveHeapKbPerWs: number }>
  const md = `# Memory per open websocket: fleethub proxy vs configurable-http-proxy 5.3

Command: \`node --import tsx proxy/bench/ws-memory.ts --ws ${N} --rounds ${ROUNDS}\`. ${N} websockets through each proxy to one
upstream echo server (one 100-byte echo each, then 3 s idle), fresh proxy processes, alternating rounds; medians of ${ROUNDS}.
Machine: ${machine.cpus} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, load average at the end ${machine.loadavg.join(' ')}.

| proxy | RSS growth per websocket, KB | live JS heap per websocket after a full GC, KB |
| --- | ---: | ---: |
| configurable-http-proxy 5.3 | ${s.chp!.rssKbPerWs} | ${s.chp!.liveHeapKbPerWs} |
| fleethub | ${s.fleethub!.rssKbPerWs} | ${s.fleethub!.liveHeapKbPerWs} |
| fleethub / CHP | ${r2(s.fleethub!.rssKbPerWs / s.chp!.rssKbPerWs)}x | ${r2(s.fleethub!.liveHeapKbPerWs / s.chp!.liveHeapKbPerWs)}x |

RSS includes garbage not yet collected and the allocator's slack, so it moves with GC timing; the live heap is
what each proxy keeps per tunnel (two sockets, the upgrade request, the pipe listeners). Each heap figure is the
total self size of a V8 heap snapshot (taken with \`--heapsnapshot-signal\`, which runs a full GC first) at ${N}
websockets minus one taken before, divided by ${N}.

All runs: ${JSON.stringify(runs)}
`
  fs.writeFileSync(path.join(out, 'report.md'), md)
  process.stdout.write(md)
}

main().catch(err => { process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`); process.exitCode = 1 })
