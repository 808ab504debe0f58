/**
 * Forwarding-engine comparison behind forward.ts's choice: the same proxy source with different
 * engines, alternating autocannon runs against one upstream (one route, 50 connections, 3 s).
 *
 *   node --import tsx proxy/bench/engines.ts [--rounds N] [--http-proxy-main PATH]
 *
 * Variants: "lean" (our plain-HTTP path, the default), "http-proxy-3" (our proxy with --change-origin,
 * which forces every request through the library), and, when --http-proxy-main points at a copy of
 * proxy/src whose forward.ts imports http-proxy 1.18.1 (installed in a scratch folder, not in this
 * project), "http-proxy-1.18.1" (also with --change-origin). Prints one JSON line per variant.
 */
import autocannon from 'autocannon'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { REPO, startUpstream } from './processes.js'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, 'http-proxy-main': { type: 'string' } } })
const ROUNDS = Number(values.rounds)

interface Variant { name: string, main: string, flags: string[], proc?: ChildProcess, url?: string, runs: Array<{ reqPerSec: number, p99: number }> }

async function startVariant(v: Variant, index: number, target: string): Promise<void> {
  const ready = `/tmp/fleethub-engines-ready-${process.pid}-${index}.json`
  rmSync(ready, { force: true })
  v.proc = spawn(process.execPath, ['--import', 'tsx', v.main, '--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0',
    '--ready-file', ready, '--log-level', 'warn', ...v.flags], { cwd: REPO, env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 't' }, stdio: 'inherit' })
  for (let i = 0; i < 400 && !existsSync(ready); i++) await new Promise(resolve => setTimeout(resolve, 50))
  const { port, apiPort } = JSON.parse(readFileSync(ready, 'utf8')) as { port: number, apiPort: number }
  rmSync(ready, { force: true })
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/routes/user/a`, { method: 'POST', headers: { authorization: 'token t' }, body: JSON.stringify({ target }) })
  if (res.status !== 201) throw new Error(`${v.name}: route add failed ${res.status}`)
  v.url = `http://127.0.0.1:${port}/user/a/api/status`
}

const main = join(REPO, 'proxy/src/main.ts')
const variants: Variant[] = [
  { name: 'lean', main, flags: [], runs: [] },
  { name: 'http-proxy-3', main, flags: ['--change-origin'], runs: [] },
]
if (values['http-proxy-main'] !== undefined) variants.push({ name: 'http-proxy-1.18.1', main: values['http-proxy-main'], flags: ['--change-origin'], runs: [] })
const upstream = await startUpstream()
try {
  for (const [i, v] of variants.entries()) await startVariant(v, i, upstream.url)
  for (const v of variants) await autocannon({ url: v.url!, connections: 50, duration: 1 })
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const x = await autocannon({ url: v.url!, connections: 50, duration: 3 })
      v.runs.push({ reqPerSec: Math.round(x.requests.average), p99: x.latency.p99 })
    }
  }
  for (const v of variants) process.stdout.write(`${JSON.stringify({ variant: v.name, runs: v.runs })}\n`)
} finally {
  for (const v of variants) v.proc?.kill('SIGTERM')
  await upstream.stop()
}
