/**
 * `--workers N` (issue #15): N proxy processes on the same ports, each a whole route-store proxy.
 * A worker that dies is replaced, and the replacement serves the whole table; the others never
 * stop serving.
 */
import t from 'tap'
import http from 'node:http'
import { sql } from 'kysely'
import { createTestDatabase } from '../../test/helpers/db.js'
import { startChildProxy } from './child-proxy.js'
import { parseProxyConfig } from '../src/config.js'
import { eventually, startUpstream, TOKEN } from './fixtures.js'

const agent = () => new http.Agent({ keepAlive: false })

/** One request on a new connection: the primary hands each connection to a worker in turn. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; boot: string | undefined }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: agent(), headers, timeout: 5000 }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', c => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, boot: res.headers['x-fleethub-proxy-boot'] as string | undefined }))
    }).on('error', reject).on('timeout', function (this: http.ClientRequest) { this.destroy(new Error(`no answer from ${url} within 5 s`)) })
  })
}

/** The children of a process (its workers). */
async function childrenOf(pid: number): Promise<number[]> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text.trim().split(/\s+/).filter(Boolean).map(Number)
}

t.test('two workers share the ports; a killed one comes back with the whole table', async t => {
  const { db, url } = await createTestDatabase(t)
  const upstream = await startUpstream('u')
  t.teardown(() => upstream.close())
  await sql`with u as (insert into users (name) select 'w' || i from generate_series(1, 500) i returning id)
    insert into servers (user_id, name, state, url) select id, '', 'running', ${upstream.url} from u`.execute(db)
  const proxy = await startChildProxy(['--routes-from-db', '--workers', '2'], { DATABASE_URL: url })
  t.teardown(() => proxy.close())

  const workers = await childrenOf(proxy.pid)
  t.equal(workers.length, 2, 'two workers')
  const boots = new Set<string>()
  for (let i = 0; i < 400 && boots.size < 2; i++) boots.add(JSON.parse((await get(`${proxy.url}/_chp_healthz`)).body).bootId)
  t.equal(boots.size, 2, 'connections reach both workers')

  const routesSeenBy = async (): Promise<Map<string, number>> => {
    const seen = new Map<string, number>()
    for (let i = 0; i < 400 && seen.size < 2; i++) {
      const res = await get(`${proxy.apiUrl}/api/routes`, { authorization: `token ${TOKEN}` })
      seen.set(res.boot!, Object.keys(JSON.parse(res.body)).length)
    }
    return seen
  }
  t.same([...(await routesSeenBy()).values()], [500, 500], 'each worker loaded the whole table')

  process.kill(workers[0]!, 'SIGKILL')
  const statuses: number[] = []
  // during the replacement every new connection is served by a live worker
  for (let i = 0; i < 50; i++) statuses.push(await get(`${proxy.url}/user/w${i + 1}/x`).then(r => r.status, (err: Error) => { t.comment(err.message); return 0 }))
  t.same([...new Set(statuses)], [200], 'requests on new connections keep working while a worker is replaced')
  t.ok(await eventually(async () => (await childrenOf(proxy.pid)).length === 2, 15_000), 'a replacement worker started')
  const after = await childrenOf(proxy.pid)
  t.notOk(after.includes(workers[0]!), 'the killed one is gone')
  t.ok(await eventually(async () => {
    const seen = await routesSeenBy()
    return seen.size === 2 && [...seen.keys()].some(b => !boots.has(b)) && [...seen.values()].every(n => n === 500)
  }, 15_000), 'the replacement serves the whole table')

  await sql`update servers set state = 'stopped', url = null where user_id = (select id from users where name = 'w1')`.execute(db)
  t.ok(await eventually(async () => [...(await routesSeenBy()).values()].every(n => n === 499), 3000), 'both workers follow changes')
})

t.test('--workers needs --routes-from-db', async t => {
  t.throws(() => parseProxyConfig(['--workers', '2'], {}), /--workers N needs --routes-from-db/, 'refused, saying why')
  t.equal(parseProxyConfig(['--workers', '2', '--routes-from-db'], {}).workers, 2)
})
