/**
 * The student's pages in real headless Chromium, end to end through the proxy child: a wrong
 * password first, then sign in, start a server (the built-in single-user server as its own
 * process), follow the progress page to it, go home, stop it, see "not running", log out.
 */
import t from 'tap'
import { DEV_PASSWORD, startTestHub } from '../../../test/helpers/hub.js'
import { chromiumPath, launchChromium, screenshot } from '../../../test/helpers/chromium.js'
import { missingPackage } from '../../../test/helpers/requirements.js'

const exe = chromiumPath()
if (!exe) {
  // a skipped subtest that says why; it runs whenever the condition above holds
  missingPackage(t, 'student pages in a browser', 'chromium is not installed (apt-get install chromium)')
} else {
  t.test('a student signs in, starts, opens, stops their server and signs out', async t => {
    const hub = await startTestHub(t)
    const browser = await launchChromium(t, exe)
    const page = await browser.newPage()
    const base = hub.publicUrl

    await page.goto(`${base}/hub/login`)
    await screenshot(page, 'login')
    await page.fill('#username', 'alice')
    await page.fill('#password', 'not-the-password')
    await page.click('#login-submit')
    const error = page.locator('#login-error')
    await error.waitFor()
    t.match(await error.textContent(), /Invalid username or password/, 'a wrong password gets a clear error')
    t.equal(await page.inputValue('#username'), 'alice', 'the username is kept for the next try')
    await screenshot(page, 'login-error')

    await page.fill('#password', DEV_PASSWORD)
    await Promise.all([page.waitForURL(`${base}/hub/home`), page.click('#login-submit')])
    t.match(await page.textContent('#server-status'), /not running/, 'home says the server is not running')
    t.equal(await page.locator('#admin-link').count(), 0, 'no admin link for a student')
    await screenshot(page, 'home')

    // Start: either the progress page (the bar climbs, then it moves on) or straight to the server.
    const visited: string[] = []
    page.on('request', r => { if (r.isNavigationRequest()) visited.push(r.url()) })
    await page.click('#start')
    await page.waitForURL(/\/user\/alice\/(?!oauth)/, { timeout: 30_000 })
    await page.waitForLoadState('load')
    const body = await page.textContent('body')
    t.match(body, /alice/, "the server's page names its user")
    t.ok(visited.some(u => u.includes('/hub/api/oauth2/authorize')), 'the server page was reached through the OAuth dance')
    t.comment(`went through ${visited.map(u => new URL(u).pathname).join(' -> ')}`)
    await screenshot(page, 'server')

    await page.goto(`${base}/hub/home`)
    t.match(await page.textContent('#server-status'), /running/)
    await Promise.all([page.waitForURL(`${base}/hub/home`), page.click('#stop')])
    t.match(await page.textContent('#server-status'), /not running/, 'stopped from the home page')
    const row = await hub.db.selectFrom('servers').select('state').executeTakeFirstOrThrow()
    t.equal(row.state, 'stopped', 'the database agrees')

    // Its old address now shows the "not running" page with a start button.
    const res = await page.goto(`${base}/user/alice/tree`)
    t.equal(res?.status(), 424)
    t.match(await page.textContent('#not-running'), /alice/)
    t.ok(await page.locator('#start').isVisible(), 'offers to start it again')
    await screenshot(page, 'not-running')

    // The token page: mint a token shown once, use it, revoke it.
    await page.click('text=Token')
    await page.waitForURL(`${base}/hub/token`)
    await page.fill('#token-note', 'grading script')
    await page.click('#token-request')
    await page.locator('#new-token-box').waitFor()
    const token = await page.inputValue('#new-token')
    t.match(token, /^\S{20,}$/, 'the new token is shown')
    const who = await fetch(`${hub.hubUrl}/hub/api/user`, { headers: { authorization: `token ${token}` } })
    t.match(await who.json(), { name: 'alice' }, 'and it works against the API')
    const tokenRow = page.locator('#tokens-body tr', { hasText: 'grading script' })
    await tokenRow.waitFor()
    await screenshot(page, 'token')
    await tokenRow.getByRole('button', { name: 'Revoke grading script' }).click()
    await tokenRow.waitFor({ state: 'detached' })
    const revoked = await fetch(`${hub.hubUrl}/hub/api/user`, { headers: { authorization: `token ${token}` } })
    t.equal(revoked.status, 403, 'a revoked token is refused')

    await Promise.all([page.waitForURL(/\/hub\/login$/), page.click('text=Log out')])
    const after = await page.goto(`${base}/hub/home`)
    t.match(after?.url(), /\/hub\/login\?next=/, 'signed out: home asks to sign in again')
    t.same(page.errors, [], 'no script errors on any page')
  })
}
