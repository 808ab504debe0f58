/**
 * The admin page in real headless Chromium against a whole hub holding 10,000 users: search,
 * sort, start/stop from the table (instant spawner: real in-process HTTP servers), the live
 * counts, "cull idle now" with its preview and the cull log; and a non-admin gets 403.
 */
import t from 'tap'
import { sql } from 'kysely'
import type { Page } from 'playwright-core'
import { DEV_PASSWORD, startTestHub, type TestHub } from '../../../test/helpers/hub.js'
import { createInstantSpawner } from '../../../test/helpers/instant-spawner.js'
import { chromiumPath, launchChromium, screenshot, type ChromiumSession } from '../../../test/helpers/chromium.js'
import { ensureUser } from '../../src/users/user.repository.js'

const exe = chromiumPath()

async function signIn(page: Page, base: string, user: string, next: string): Promise<void> {
  await page.goto(`${base}/hub/login?next=${encodeURIComponent(next)}`)
  await page.fill('#username', user)
  await page.fill('#password', DEV_PASSWORD)
  await Promise.all([page.waitForURL(url => url.pathname !== '/hub/login'), page.click('#login-submit')])
}

const serverState = async (hub: TestHub, user: string) => (await hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
  .select('servers.state').where('users.name', '=', user).where('servers.name', '=', '').executeTakeFirst())?.state

/**
 * A server idle for two hours: its row and its user's activity set back in the database, and its
 * proxy route carrying the same old activity (the culler reads the proxy's numbers first, and a
 * route added now would count as activity now).
 */
async function arrangeIdleServer(hub: TestHub, user: string): Promise<void> {
  const u = await ensureUser(hub.db, user)
  const ago = sql<Date>`now() - interval '2 hours'`
  await hub.db.updateTable('users').set({ last_activity: ago }).where('id', '=', u.id).execute()
  await hub.db.insertInto('servers').values({
    user_id: u.id, name: '', state: 'running', spawner_kind: 'instant', url: 'http://127.0.0.1:9',
    started: sql<Date>`now() - interval '1 day'`, last_activity: ago,
  }).execute()
  const routes = await hub.proxyClient.getRoutes()
  const table: Record<string, { target: string; [k: string]: unknown }> = {}
  for (const [path, r] of Object.entries(routes)) table[path] = r
  table[`/user/${user}`] = { target: 'http://127.0.0.1:9', jupyterhub: true, user, server_name: '', last_activity: new Date(Date.now() - 7_200_000).toISOString() }
  await hub.proxyClient.replaceRoutes(table)
}

if (!exe) {
  t.skip('admin page in a browser: chromium is not installed (apt-get install chromium)')
} else {
  t.test('admin page', async t => {
    const hub = await startTestHub(t, { args: ['--admin-users', 'root', '--no-cull-idle', '--cull-timeout', '3600'], spawner: () => createInstantSpawner() })
    await hub.db.executeQuery(sql`insert into users (name) select 'student' || lpad(i::text, 5, '0') from generate_series(1, 10000) i`.compile(hub.db))
    await arrangeIdleServer(hub, 'idler')
    const chromium: ChromiumSession = await launchChromium(t, exe)
    const base = hub.publicUrl

    t.test('an admin finds, sorts, starts and stops a user among 10,000, and culls an idle server', async t => {
      const page = await chromium.newPage()
      await signIn(page, base, 'root', '/hub/admin')
      t.equal(new URL(page.url()).pathname, '/hub/admin')
      const info = page.locator('#page-info')
      await page.waitForFunction(() => /of 10,002$/.test(document.getElementById('page-info')?.textContent ?? ''))
      t.equal(await info.textContent(), '1–50 of 10,002', 'paginated: 50 rows of 10,000 students + idler + root')
      t.equal(await page.locator('#users-body tr').count(), 50)
      t.equal(await page.textContent('#stat-running'), '1', 'the live count shows the one running server')

      await page.click('#next')
      await page.waitForFunction(() => document.getElementById('page-info')?.textContent === '51–100 of 10,002')
      t.pass('next page')

      // search (debounced, name_filter)
      await page.fill('#search', 'student04242')
      await page.waitForFunction(() => document.getElementById('page-info')?.textContent === '1–1 of 1')
      t.equal(await page.textContent('#users-body tr td.name'), 'student04242', 'found among 10,000')

      // sort by name, descending
      await page.fill('#search', 'student')
      await page.waitForFunction(() => document.getElementById('page-info')?.textContent === '1–50 of 10,000')
      await page.click('#sort-name')
      await page.waitForFunction(() => document.querySelector('#users-body tr td.name')?.textContent === 'student10000')
      t.equal(await page.getAttribute('th[data-sort="name"]', 'aria-sort'), 'descending')
      t.same(await page.locator('#users-body tr td.name').evaluateAll(els => els.slice(0, 3).map(e => e.textContent)), ['student10000', 'student09999', 'student09998'])
      await screenshot(page, 'admin')

      // start and stop one user's server from the table
      await page.fill('#search', 'student04242')
      const row = page.locator('tr[data-user="student04242"]')
      await row.waitFor()
      await row.getByRole('button', { name: 'Start student04242' }).click()
      await page.waitForFunction(() => document.querySelector('tr[data-user="student04242"] td.state')?.textContent === 'running')
      t.equal(await serverState(hub, 'student04242'), 'running', 'started through the API')
      await page.waitForFunction(() => document.getElementById('stat-running')?.textContent === '2')
      t.pass('the live count went up')
      const proxied = await fetch(`${base}/user/student04242/`)
      t.match(await proxied.text(), /server of student04242/, 'the proxy routes to the new server')
      await row.getByRole('button', { name: 'Stop student04242' }).click()
      await page.waitForFunction(() => document.querySelector('tr[data-user="student04242"] td.state')?.textContent === 'stopped')
      t.equal(await serverState(hub, 'student04242'), 'stopped', 'stopped through the API')

      // cull idle now: preview first, nothing stopped yet; then confirm
      await page.click('#cull-preview')
      await page.locator('#cull-preview-list li').first().waitFor()
      t.match(await page.textContent('#cull-preview-list'), /idler: idle 2 h \(idle\)/, 'the preview lists the idle server')
      t.equal(await page.textContent('#cull-confirm'), 'Stop 1 idle server')
      t.equal(await serverState(hub, 'idler'), 'running', 'a preview stops nothing')
      await screenshot(page, 'admin-cull-preview')
      await page.click('#cull-confirm')
      await page.waitForFunction(() => /^Cull done/.test(document.getElementById('cull-status')?.textContent ?? ''))
      t.equal(await page.textContent('#cull-status'), 'Cull done: 1 stopped, 0 skipped.')
      t.equal(await serverState(hub, 'idler'), 'stopped', 'the idle server was culled')
      const logRow = page.locator('#cull-log-body tr', { hasText: 'idler' }).filter({ hasText: /^(?!.*preview)/ })
      await page.waitForFunction(() => [...document.querySelectorAll('#cull-log-body tr')].some(tr => /idler/.test(tr.textContent ?? '') && /stopped/.test(tr.textContent ?? '') && !/preview/.test(tr.textContent ?? '')))
      t.ok(await logRow.count() >= 1, 'the cull is in the log')
      await page.waitForFunction(() => document.getElementById('stat-running')?.textContent === '0')
      t.pass('the live count shows no running server')
      t.same(page.errors, [], 'no script errors')
    })

    t.test('a non-admin gets 403 on the admin page and its stats', async t => {
      await chromium.context.clearCookies() // one profile: forget the admin's session
      const page = await chromium.newPage()
      await signIn(page, base, 'student00007', '/hub/home')
      t.equal(await page.locator('#admin-link').count(), 0, 'no admin link for a student')
      const res = await page.goto(`${base}/hub/admin`)
      t.equal(res?.status(), 403)
      t.match(await page.textContent('#error-message'), /Only admins/)
      const stats = await page.goto(`${base}/hub/admin/stats`)
      t.equal(stats?.status(), 403)
      t.match(await stats?.json(), { code: 'HUB_FORBIDDEN' })
      await screenshot(page, 'admin-403')
    })
  })
}
