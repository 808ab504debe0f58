/**
 * The progress page in real headless Chromium: a student waiting behind a full admission queue
 * sees their place in line; when the start fails they see why, and "Try again" starts it again.
 * One spawn slot (--concurrent-spawn-limit 1) is held by another user's start behind a gate.
 */
import t from 'tap'
import type { Spawner } from '../../../spawner/src/index.js'
import { DEV_PASSWORD, startTestHub } from '../../../test/helpers/hub.js'
import { Browser } from '../../../test/helpers/browser.js'
import { createInstantSpawner } from '../../../test/helpers/instant-spawner.js'
import { chromiumPath, launchChromium, screenshot } from '../../../test/helpers/chromium.js'
import { ensureUser } from '../../src/users/user.repository.js'
import { createToken } from '../../src/tokens/token.repository.js'
import { missingPackage } from '../../../test/helpers/requirements.js'

const REASON = 'the image "course:2026" could not be pulled'

/** Instant servers, except: `blocker` waits for `release()`, and carol's first start fails. */
function gatedSpawner(): Spawner & { release(): void } {
  const inner = createInstantSpawner()
  let release!: () => void
  const gate = new Promise<void>(r => { release = r })
  let carolTries = 0
  return {
    kind: 'gated',
    release,
    async start(spec, opts) {
      if (spec.user === 'blocker') await Promise.race([gate, new Promise(r => setTimeout(r, 30_000))])
      if (spec.user === 'carol' && carolTries++ === 0) throw new Error(REASON)
      return inner.start(spec, opts)
    },
    stop: (state, who) => inner.stop(state, who),
    poll: (state, who) => inner.poll(state, who),
    close: () => inner.close(),
  }
}

const exe = chromiumPath()
if (!exe) {
  // a skipped subtest that says why; it runs whenever the condition above holds
  missingPackage(t, 'progress page in a browser', 'chromium is not installed (apt-get install chromium)')
} else {
  t.test('a queued student sees their place in line, then the failure reason, then retries', async t => {
    const spawner = gatedSpawner()
    t.teardown(() => spawner.release())
    const hub = await startTestHub(t, { args: ['--concurrent-spawn-limit', '1'], spawner: () => spawner, slowSpawnTimeoutMs: 100 })
    const root = await ensureUser(hub.db, 'root', { admin: true })
    const token = (await createToken(hub.db, { kind: 'api', userId: root.id, scopes: ['inherit'] })).token
    await ensureUser(hub.db, 'blocker')
    const held = await fetch(`${hub.hubUrl}/hub/api/users/blocker/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
    t.equal(held.status, 202, "blocker's start holds the only slot")

    const chromium = await launchChromium(t, exe)
    const page = await chromium.newPage()
    const base = hub.publicUrl
    await page.goto(`${base}/hub/login`)
    await page.fill('#username', 'carol')
    await page.fill('#password', DEV_PASSWORD)
    await Promise.all([page.waitForURL(`${base}/hub/home`), page.click('#login-submit')])
    await Promise.all([page.waitForURL(`${base}/hub/spawn-pending/carol`), page.click('#start')])
    const queue = page.locator('#queue-position')
    await queue.waitFor()
    t.match(await queue.textContent(), /You are number 1 in line/, 'the page shows the place in line')
    t.equal(await page.getAttribute('#progress-bar', 'value'), '0')
    await screenshot(page, 'spawn-pending')

    // The admin's live counts see the same: two starts pending, one in the spawner, one queued.
    const admin = new Browser(hub.hubUrl)
    await admin.login('root', DEV_PASSWORD)
    const stats = await admin.go('/hub/admin/stats')
    t.equal(stats.status, 200)
    t.same(JSON.parse(stats.body), { running: 0, pending: 2, stopping: 0, spawning: 1, queued: 1 }, 'GET /hub/admin/stats')

    spawner.release()
    const failed = page.locator('#failed')
    await failed.waitFor()
    t.equal(await page.textContent('#failed-reason'), REASON, 'the failure reason, without the "Spawn failed:" prefix')
    t.notOk(await queue.isVisible(), 'no place in line once it failed')
    t.ok(await page.locator('#retry').isVisible(), 'a retry button')
    await screenshot(page, 'spawn-failed')

    await Promise.all([page.waitForURL(/\/user\/carol\/$/, { timeout: 20_000 }), page.click('#retry')])
    t.match(await page.textContent('body'), /server of carol/, 'the retry reached the server')
    t.same(page.errors, [], 'no script errors')
  })
}
