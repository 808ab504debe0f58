/**
 * Benchmarks of the spawner area; writes bench-results/<date>-spawner-singleuser/report.{json,md}.
 *   npm run build && npx tsx spawner/test/bench/singleuser.bench.ts [virtualServers=1000] [spawns=5]
 * 1. Virtual single-user servers hosted in this one process (as loadtest's sim-servers does), each
 *    on its own 127.x.y.z:8888: time to create, heap+RSS per server, one authenticated request each.
 * 2. Local spawner start -> listening latency, built-in server vs jupyterhub-singleuser (if on PATH),
 *    alternated in the same run so the ratio shares the machine's noise.
 */
import { execSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { builtInServerScript, createLocalProcessSpawner, defaultSingleUserCommand } from '../../src/local-process.js'
import { createSingleUserServer, type SingleUserServer } from '../../src/singleuser/server.js'
import { startHubPeer } from '../singleuser/hub-peer.js'

const N = Number(process.argv[2] ?? 1000)
const SPAWNS = Number(process.argv[3] ?? 5)
const log = pino({ level: 'silent' })
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d

async function virtualServers(): Promise<Record<string, number>> {
  const peer = await startHubPeer({ clientId: 'unused', redirectUri: '/unused' })
  peer.addToken('tok', { kind: 'user', name: 'admin', scopes: ['access:servers'], session_id: null })
  global.gc?.()
  const heap0 = process.memoryUsage().heapUsed, rss0 = process.memoryUsage().rss
  const servers: SingleUserServer[] = []
  const createMs: number[] = []
  const t0 = performance.now()
  for (let i = 0; i < N; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, N - i) }, async (_, j) => {
      const k = i + j, user = `u${k}`, prefix = `/user/${user}/`
      const s0 = performance.now()
      servers.push(await createSingleUserServer({
        user, serverName: '', prefix, baseUrl: '/', apiUrl: peer.apiUrl, apiToken: peer.apiToken, activityUrl: `${peer.apiUrl}/users/${user}/activity`,
        activityIntervalMs: 300_000, clientId: `jupyterhub-user-${user}`, oauthCallbackUrl: `${prefix}oauth_callback`,
        accessScopes: [`access:servers!user=${user}`], host: `127.3.${Math.floor(k / 250)}.${(k % 250) + 1}`, port: 8888, log,
      }))
      createMs.push(performance.now() - s0)
    }))
  }
  const totalCreate = performance.now() - t0
  global.gc?.()
  const heap1 = process.memoryUsage().heapUsed, rss1 = process.memoryUsage().rss
  const reqMs: number[] = []
  for (let i = 0; i < servers.length; i += 50) {
    await Promise.all(servers.slice(i, i + 50).map(async s => {
      const r0 = performance.now()
      const res = await fetch(`${s.url}api/status`, { headers: { authorization: 'token tok' } })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`status ${res.status} from ${s.url}`)
      reqMs.push(performance.now() - r0)
    }))
  }
  await Promise.all(servers.map(s => s.close()))
  await peer.close()
  return {
    servers: N, createTotalS: round(totalCreate / 1000, 2), createMedianMs: round(median(createMs)), createP99Ms: round(pct(createMs, 0.99)),
    heapPerServerKiB: round((heap1 - heap0) / N / 1024), rssPerServerKiB: round((rss1 - rss0) / N / 1024),
    firstRequestMedianMs: round(median(reqMs)), firstRequestP99Ms: round(pct(reqMs, 0.99)), activityReports: peer.activity.length,
  }
}

async function spawnLatency(): Promise<Record<string, unknown>> {
  const peer = await startHubPeer({ clientId: 'jupyterhub-user-alice', redirectUri: '/user/alice/oauth_callback' })
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'))
  const kinds: Array<[string, string[]]> = [['built-in', [process.execPath, builtInServerScript(), 'singleuser']]]
  const jupyter = defaultSingleUserCommand(process.env.PATH)
  if (jupyter[0] === 'jupyterhub-singleuser') kinds.push(['jupyterhub-singleuser', jupyter])
  const times: Record<string, number[]> = Object.fromEntries(kinds.map(([k]) => [k, []]))
  const stopTimes: Record<string, number[]> = Object.fromEntries(kinds.map(([k]) => [k, []]))
  const prefix = '/user/alice/'
  const spec = { user: 'alice', serverName: '', prefix, userOptions: {}, env: {
    JUPYTERHUB_API_TOKEN: peer.apiToken, JUPYTERHUB_API_URL: peer.apiUrl, JUPYTERHUB_USER: 'alice', JUPYTERHUB_SERVER_NAME: '',
    JUPYTERHUB_CLIENT_ID: 'jupyterhub-user-alice', JUPYTERHUB_SERVICE_PREFIX: prefix, JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`,
    JUPYTERHUB_BASE_URL: '/', JUPYTERHUB_ACTIVITY_URL: `${peer.apiUrl}/users/alice/activity`,
  } }
  for (let round_ = 0; round_ < SPAWNS; round_++) {
    for (const [kind, cmd] of kinds) {
      const sp = createLocalProcessSpawner({ cmd, usersDir: join(dir, 'users'), logDir: join(dir, 'logs') }, { log, hubEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8' } })
      const t0 = performance.now()
      const { url, state } = await sp.start(spec, { signal: new AbortController().signal, progress: () => {} })
      // what the hub waits for: the readiness poll answering < 500
      for (let i = 0; i < 200; i++) { try { if ((await fetch(url + prefix, { redirect: 'manual' })).status < 500) break } catch { /* retry */ } await new Promise(r => setTimeout(r, 10)) }
      times[kind].push(performance.now() - t0)
      const s0 = performance.now()
      await sp.stop(state, spec)
      stopTimes[kind].push(performance.now() - s0)
    }
  }
  await peer.close()
  rmSync(dir, { recursive: true, force: true })
  const out: Record<string, unknown> = {}
  for (const [kind] of kinds) out[kind] = { spawns: SPAWNS, startToReadyMedianMs: round(median(times[kind])), stopMedianMs: round(median(stopTimes[kind])), startSamplesMs: times[kind].map(x => round(x)) }
  if (kinds.length === 2) out.ratioJupyterOverBuiltIn = round(median(times['jupyterhub-singleuser']) / median(times['built-in']), 2)
  return out
}

const sha = execSync('git rev-parse --short HEAD').toString().trim()
const date = new Date().toISOString().slice(0, 10)
const machine = { cpus: cpus().length, loadavg1: round(loadavg()[0], 2), node: process.version }
const vs = await virtualServers()
const spawn = await spawnLatency()
const report = { kind: 'spawner-singleuser', date: new Date().toISOString(), sha, command: `npx tsx --expose-gc spawner/test/bench/singleuser.bench.ts ${N} ${SPAWNS}`, machine, virtualServers: vs, localSpawn: spawn }
const outDir = join('bench-results', `${date}-spawner-singleuser`)
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n')
const md = [
  `# spawner: built-in single-user server and local spawner (${report.date}, ${sha})`, '',
  `Command: \`${report.command}\` (after \`npm run build\`). Machine: ${machine.cpus} cores, load ${machine.loadavg1} at start, Node ${machine.node}; shared and noisy.`, '',
  `## ${N} virtual servers in one process (each on its own 127.3.x.y:8888)`, '',
  '| metric | value |', '| --- | --- |', ...Object.entries(vs).map(([k, v]) => `| ${k} | ${v} |`), '',
  '## Local spawner: start -> readiness poll < 500, alternated in one run', '',
  '| server | spawns | start->ready median ms | stop median ms |', '| --- | --- | --- | --- |',
  ...Object.entries(spawn).filter(([, v]) => typeof v === 'object').map(([k, v]) => { const x = v as Record<string, number>; return `| ${k} | ${x.spawns} | ${x.startToReadyMedianMs} | ${x.stopMedianMs} |` }),
  ...(spawn.ratioJupyterOverBuiltIn ? ['', `Ratio of medians, jupyterhub-singleuser / built-in: **${spawn.ratioJupyterOverBuiltIn}x**.`] : []), '',
]
writeFileSync(join(outDir, 'report.md'), md.join('\n'))
process.stdout.write(md.join('\n'))
