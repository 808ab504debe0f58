/**
 * The activity buffer's cache of who a report is about: fresh entries answer without the
 * database, and expired ones leave as new ones arrive rather than staying until maxTargets (issue
 * #16: every user who ever reported was kept).
 */
import t from 'tap'
import { createLogger } from '../../core/src/log.js'
import { ActivityBuffer } from '../../hub/src/servers/activity.js'
import { createTestDatabase } from '../../test/helpers/db.js'

t.test('expired targets are swept as new ones are cached', async t => {
  const { db } = await createTestDatabase(t)
  const buffer = new ActivityBuffer(db, createLogger('silent'), { targetTtlMs: 3000 })
  t.teardown(() => buffer.close())
  const names = Array.from({ length: 20 }, (_, i) => `user${i}`)
  await db.insertInto('users').values([...names, 'late'].map(name => ({ name }))).execute()
  for (const name of names) t.ok(await buffer.target(name))
  t.equal(buffer.cachedTargets, 20)
  t.equal(await buffer.target('no-such-user'), undefined)
  t.equal(buffer.cachedTargets, 20, 'unknown users are never cached')
  await new Promise(r => setTimeout(r, 3100))
  t.ok(await buffer.target('late'))
  t.equal(buffer.cachedTargets, 1, 'only the fresh entry is left')
})

t.test('a fresh target answers from the cache', async t => {
  const { db } = await createTestDatabase(t)
  const buffer = new ActivityBuffer(db, createLogger('silent'), { targetTtlMs: 60_000 })
  t.teardown(() => buffer.close())
  await db.insertInto('users').values({ name: 'erin' }).execute()
  const first = await buffer.target('erin')
  await db.deleteFrom('users').execute()
  t.equal(await buffer.target('erin'), first, 'the same entry, no database read')
})
