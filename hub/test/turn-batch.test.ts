/**
 * TurnBatch (hub/src/turn-batch.ts): keys asked for in one turn of the event loop are answered by
 * one call, each caller gets its own key's answer, and a failure stays within its chunk.
 */
import t from 'tap'
import { TurnBatch } from '../src/turn-batch.js'

function recording(answer: (keys: readonly string[]) => Promise<ReadonlyMap<string, string>> = async keys => new Map(keys.map(k => [k, `v:${k}`]))) {
  const calls: string[][] = []
  return { calls, run: (keys: readonly string[]) => { calls.push([...keys]); return answer(keys) } }
}

t.test('one call per turn, distinct keys, each caller its own answer', async t => {
  const r = recording()
  const b = new TurnBatch(r.run)
  const got = await Promise.all(['a', 'b', 'a', 'c'].map(k => b.load(k)))
  t.same(got, ['v:a', 'v:b', 'v:a', 'v:c'])
  t.same(r.calls, [['a', 'b', 'c']], 'one call, each key once')
  t.equal(await b.load('d'), 'v:d', 'a later load is a new batch')
  t.equal(r.calls.length, 2)
})

t.test('a key the answer leaves out is undefined (not found), not an error', async t => {
  const b = new TurnBatch(recording(async keys => new Map(keys.filter(k => k !== 'ghost').map(k => [k, k]))).run)
  t.same(await Promise.all([b.load('x'), b.load('ghost')]), ['x', undefined])
})

t.test('at most `max` keys per call', async t => {
  const r = recording()
  const b = new TurnBatch(r.run, 3)
  const keys = ['1', '2', '3', '4', '5', '6', '7']
  t.same(await Promise.all(keys.map(k => b.load(k))), keys.map(k => `v:${k}`))
  t.same(r.calls, [['1', '2', '3'], ['4', '5', '6'], ['7']])
})

t.test('a failed call rejects its own chunk only; a throwing run rejects, never crashes', async t => {
  const b = new TurnBatch(async keys => {
    if (keys.includes('bad')) throw new Error('boom')
    return new Map(keys.map(k => [k, k]))
  }, 2)
  const [x, bad, y] = await Promise.allSettled([b.load('x'), b.load('bad'), b.load('y')])
  t.match(x, { status: 'rejected', reason: { message: 'boom' } }, 'x shared the chunk with bad')
  t.match(bad, { status: 'rejected', reason: { message: 'boom' } })
  t.same(y, { status: 'fulfilled', value: 'y' }, 'the next chunk is answered')
  const sync = new TurnBatch<string>(() => { throw new Error('sync boom') })
  await t.rejects(sync.load('k'), /sync boom/)
  t.equal(await new TurnBatch(async ks => new Map(ks.map(k => [k, k]))).load('after'), 'after', 'batches keep working')
})

t.test('inputs travel with their keys (batched writes); a key twice in a turn keeps its first input', async t => {
  const seen: Array<[string, number]> = []
  const b = new TurnBatch<string, number>(async (keys, inputOf) => {
    for (const k of keys) seen.push([k, inputOf(k)])
    return new Map(keys.map(k => [k, `${k}=${inputOf(k)}`]))
  })
  t.same(await Promise.all([b.load('a', 1), b.load('b', 2), b.load('a', 3)]), ['a=1', 'b=2', 'a=1'])
  t.same(seen, [['a', 1], ['b', 2]])
})

t.test('markRunning: servers ready in the same turn share a statement, each gets its own outcome', async t => {
  const { createTestDatabase } = await import('../../test/helpers/db.js')
  const { markRunning } = await import('../src/servers/server.repository.js')
  const { db } = await createTestDatabase(t)
  const users = await db.insertInto('users').values(['m1', 'm2', 'm3'].map(name => ({ name }))).returning('id').execute()
  const servers = await db.insertInto('servers').values(users.map((u, i) => ({ user_id: u.id, name: '', owner: 'hub-a', state: i === 2 ? 'stopped' as const : 'pending' as const })))
    .returning('id').execute()
  const outcomes = await Promise.all(servers.map((s, i) => markRunning(db, s.id, `http://127.0.0.1:${9000 + i}`, { port: 9000 + i, note: `it's "quoted"` }, 'hub-a')))
  t.same(outcomes, [true, true, false], 'a server stopped while starting is not marked running')
  const rows = await db.selectFrom('servers').select(['id', 'state', 'url', 'spawner_state']).orderBy('id').execute()
  t.match(rows, [
    { state: 'running', url: 'http://127.0.0.1:9000', spawner_state: { port: 9000, note: `it's "quoted"` } },
    { state: 'running', url: 'http://127.0.0.1:9001', spawner_state: { port: 9001 } },
    { state: 'stopped', url: null },
  ])
  t.same(await markRunning(db, servers[0]!.id, 'http://127.0.0.1:1', {}, 'hub-a'), false, 'already running: not pending any more')
  await db.updateTable('servers').set({ state: 'pending', owner: 'hub-b' }).where('id', '=', servers[2]!.id).execute()
  t.same(await markRunning(db, servers[2]!.id, 'http://127.0.0.1:1', {}, 'hub-a'), false, 'pending under another hub (claimed again since): not ours to mark')
})
