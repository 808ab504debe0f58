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
import { missingPackage } from '../../../test/helpers/requirements.js'

const exe = chromiumPath()

/** One profile serves every subtest, so forget any earlier session first. */
async function signIn(page: Page, base: string, user: string, next: string): Promise<void> {
  await page.context().clearCookies()
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
  // a skipped subtest that says why; it runs whenever the condition above holds
  missingPackage(t, 'admin page in a browser', 'chromium is not installed (apt-get install chromium)')
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

    t.test('roster import, bulk start/stop, groups, admin flag and delete', async t => {
      const page = await chromium.newPage()
      await signIn(page, base, 'root', '/hub/admin')
      await page.waitForFunction(() => /of 10,/.test(document.getElementById('page-info')?.textContent ?? ''))

      // pasted names plus a CSV roster with an admin column; one name already exists
      await page.fill('#add-names', 'newbie1, newbie2\nnewbie3')
      await page.setInputFiles('#add-csv', { name: 'roster.csv', mimeType: 'text/csv', buffer: Buffer.from('username,admin\nta-anna,yes\nstudent00001,\n"rostered1",no\n') })
      await page.click('#add-submit')
      await page.waitForFunction(() => /^Added/.test(document.getElementById('add-result')?.textContent ?? ''))
      t.equal(await page.textContent('#add-result'), 'Added 5 users (1 already existed).')
      const admins = await hub.db.selectFrom('users').select(['name', 'admin']).where('name', 'in', ['ta-anna', 'newbie1', 'rostered1']).orderBy('name').execute()
      t.same(admins, [{ name: 'newbie1', admin: false }, { name: 'rostered1', admin: false }, { name: 'ta-anna', admin: true }], 'the roster admin column is honoured')

      // bulk start of a page selection, 10 at a time through the API
      await page.fill('#search', 'newbie')
      await page.waitForFunction(() => document.getElementById('page-info')?.textContent === '1–3 of 3')
      await page.check('#select-page')
      t.equal(await page.textContent('#selection-info'), '3 selected')
      await page.click('#bulk-start')
      await page.waitForFunction(() => /succeeded/.test(document.getElementById('bulk-progress')?.textContent ?? ''))
      t.equal(await page.textContent('#bulk-progress'), 'Starting: 3 of 3 succeeded.')
      for (const u of ['newbie1', 'newbie2', 'newbie3']) t.equal(await serverState(hub, u), 'running', `${u} started`)

      // groups: a hostile name stays text; add the selection to it
      const hostile = '<img src=x onerror="window.__pwned=1">'
      await page.fill('#group-name', hostile)
      await page.click('#group-form button[type=submit]')
      await page.waitForFunction(name => [...document.querySelectorAll('#groups-list li')].some(li => li.textContent === name + ' (0 members)'), hostile)
      await page.selectOption('#group-select', hostile)
      await page.click('#group-add')
      await page.waitForFunction(name => [...document.querySelectorAll('#groups-list li')].some(li => li.textContent === name + ' (3 members)'), hostile)
      t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'a group name is never parsed as HTML')
      t.equal(await page.locator('#groups-list img').count(), 0)

      await page.click('#bulk-stop')
      await page.waitForFunction(() => /^Stopping: .*succeeded/.test(document.getElementById('bulk-progress')?.textContent ?? ''))
      t.equal(await page.textContent('#bulk-progress'), 'Stopping: 3 of 3 succeeded.')
      for (const u of ['newbie1', 'newbie2', 'newbie3']) t.equal(await serverState(hub, u), 'stopped', `${u} stopped`)

      // make admin, then delete (after a confirm dialog)
      await page.click('#bulk-clear')
      t.equal(await page.textContent('#selection-info'), 'No users selected')
      await page.getByRole('button', { name: 'Make admin newbie2' }).click()
      await page.waitForFunction(() => document.querySelector('tr[data-user="newbie2"] td.admin')?.textContent === 'admin')
      t.equal((await hub.db.selectFrom('users').select('admin').where('name', '=', 'newbie2').executeTakeFirst())?.admin, true)
      page.once('dialog', d => void d.accept())
      await page.getByRole('button', { name: 'Delete newbie3' }).click()
      await page.waitForFunction(() => document.getElementById('page-info')?.textContent === '1–2 of 2')
      t.equal(await hub.db.selectFrom('users').select('id').where('name', '=', 'newbie3').executeTakeFirst(), undefined, 'deleted')
      await page.fill('#search', 'root')
      await page.locator('tr[data-user="root"]').waitFor()
      t.equal(await page.locator('tr[data-user="root"] button', { hasText: 'Make admin' }).count() + await page.locator('tr[data-user="root"] button', { hasText: 'Remove admin' }).count(), 1, 'your own row has its buttons')
      t.equal(await page.locator('tr[data-user="root"] button', { hasText: 'Delete' }).count(), 0, 'but no delete button for yourself')
      t.same(page.errors, [], 'no script errors')
    })

    t.test('the page script is a content-hashed bundle under /hub/static, cached for a year', async t => {
      const page = await chromium.newPage()
      await signIn(page, base, 'root', '/hub/admin')
      const src = await page.getAttribute('script[src]', 'src')
      t.match(src, /^\/hub\/static\/admin-page-[A-Z0-9]+\.js$/)
      const res = await fetch(`${base}${src}`)
      t.equal(res.status, 200, 'anyone may fetch it: it holds code, no data')
      t.match(res.headers.get('content-type'), /javascript/)
      t.match(res.headers.get('cache-control'), /max-age=31536000.*immutable/)
      t.equal((await fetch(`${base}/hub/static/admin-page-NOSUCH00.js`)).status, 404)
      t.equal((await fetch(`${base}/hub/static/manifest.json`)).status, 404, 'only bundles are served')
    })

    t.test('a non-admin gets 403 on the admin page and its stats', async t => {
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
