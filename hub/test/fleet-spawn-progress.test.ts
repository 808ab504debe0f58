/**
 * Progress streams across hubs (issue #14): a user whose spawn runs on hub A watches
 * GET /hub/api/users/<name>/server/progress on hub B and sees A's progress through to ready or
 * failed (relayed over the notification bus, hub/src/servers/progress-relay.ts); a subscriber
 * that comes late, or to a hub that joined after the spawn began, still gets the current state
 * and the final event (the server row).
 */
import t from 'tap'
import type { Spawner } from '../../spawner/src/index.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { asToken, FLEET_PROXY_TOKEN, startSharedProxy, userToken, readProgress, type ProgressEvent } from '../../test/helpers/fleet.js'

type Event = ProgressEvent

/** Instant servers; a start takes `delayMs` (in steps that report progress), or fails for users named bad*. */
function steppingSpawner(delayMs: number): Spawner {
  const inner = createInstantSpawner()
  return {
    ...inner,
    async start(spec, opts) {
      for (let step = 1; step <= 3; step++) {
        opts.progress({ progress: 10 * step, message: `step ${step} of 3` })
        await new Promise(r => setTimeout(r, delayMs / 3))
      }
      if (spec.user.startsWith('bad')) throw new Error('the image does not exist')
      return inner.start(spec, opts)
    },
    stop: (s, w) => inner.stop(s, w),
    poll: (s, w) => inner.poll(s, w),
    close: () => inner.close(),
  }
}

function hub(t: Parameters<typeof startTestHub>[0], spawner: Spawner, proxyApiUrl: string, databaseUrl?: string): Promise<TestHub> {
  return startTestHub(t, { databaseUrl, spawner: () => spawner, slowSpawnTimeoutMs: 50, env: { CONFIGPROXY_AUTH_TOKEN: FLEET_PROXY_TOKEN },
    args: ['--proxy', 'external', '--proxy-api-url', proxyApiUrl, '--admin-users', 'admin'] })
}


t.test('a spawn on A, watched from B', async t => {
  const proxy = await startSharedProxy(t)
  const a = await hub(t, steppingSpawner(900), proxy.apiUrl)
  const b = await hub(t, createInstantSpawner(), proxy.apiUrl, a.databaseUrl)

  t.test('through to ready: every step A reports, then ready', async t => {
    const u = await userToken(a.db, 'watched')
    t.equal((await asToken(a, u.token, '/hub/api/users/watched/server', { method: 'POST' })).status, 202, 'spawn accepted by A, still starting')
    const res = await asToken(b, u.token, '/hub/api/users/watched/server/progress')
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /text\/event-stream/)
    const events = await readProgress(res)
    t.same(events.map(e => e.message).filter(m => m.startsWith('step')), ['step 1 of 3', 'step 2 of 3', 'step 3 of 3'], `B relays A's steps: ${JSON.stringify(events.map(e => e.message))}`)
    t.match(events[events.length - 1], { progress: 100, ready: true, url: '/user/watched/' }, 'and ends with ready')
    t.ok(events.every((e, i) => i === 0 || e.progress >= events[i - 1]!.progress), 'progress never goes backwards')

    const late = await readProgress(await asToken(b, u.token, '/hub/api/users/watched/server/progress'))
    t.match(late, [{ ready: true, url: '/user/watched/' }], 'a late subscriber on B gets ready at once')
  })

  t.test('through to failed: A\'s reason, on B', async t => {
    const u = await userToken(a.db, 'badimage')
    t.equal((await asToken(a, u.token, '/hub/api/users/badimage/server', { method: 'POST' })).status, 202)
    const events = await readProgress(await asToken(b, u.token, '/hub/api/users/badimage/server/progress'))
    t.ok(events.some(e => e.message === 'step 2 of 3'), 'the steps are relayed')
    t.match(events[events.length - 1], { progress: 100, failed: true, message: /the image does not exist/ }, 'the failure, with its reason')
    const late = await readProgress(await asToken(b, u.token, '/hub/api/users/badimage/server/progress'))
    t.match(late, [{ failed: true, message: /the image does not exist/ }], 'a late subscriber on B gets the failure')
  })
})

t.test('a hub that joins after the spawn began: current state, then the final event', async t => {
  const proxy = await startSharedProxy(t)
  const a = await hub(t, steppingSpawner(4500), proxy.apiUrl)
  const u = await userToken(a.db, 'early')
  t.equal((await asToken(a, u.token, '/hub/api/users/early/server', { method: 'POST' })).status, 202, 'spawn accepted by A')
  const b = await hub(t, createInstantSpawner(), proxy.apiUrl, a.databaseUrl)
  const row = await b.db.selectFrom('servers').select('state').executeTakeFirstOrThrow()
  t.equal(row.state, 'pending', 'B, starting, left the spawn of a live hub alone')
  const events = await readProgress(await asToken(b, u.token, '/hub/api/users/early/server/progress'))
  t.match(events[events.length - 1], { progress: 100, ready: true, url: '/user/early/' }, `B's stream ends with ready (${events.length} events)`)
})
