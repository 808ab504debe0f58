/**
 * The native authenticator: only accounts an admin created can sign in; the first sign-in sets
 * the password (bcrypt-hashed); failed attempts are rate-limited so a password cannot be guessed.
 */
import t from 'tap'
import { FailureLimiter } from '../../hub/src/auth/native-authenticator.js'
import { Browser } from '../../test/helpers/browser.js'
import { startTestHub } from '../../test/helpers/hub.js'

t.test('native accounts: roster users only, first sign-in sets the password, attempts limited', async t => {
  const hub = await startTestHub(t, { args: ['--authenticator', 'native', '--admin-users', 'prof'] })
  const admin = await hub.db.selectFrom('users').select(['name', 'admin']).where('name', '=', 'prof').executeTakeFirst()
  t.same(admin, { name: 'prof', admin: true }, 'configured admins exist from the start')
  await hub.db.insertInto('users').values([{ name: 'stu1' }, { name: 'stu2' }]).execute() // a roster import

  const page = await new Browser(hub.publicUrl).go('/hub/login')
  t.match(page.body, /id="first-sign-in"/, 'the login page explains the first sign-in')
  t.notMatch(page.body, /Development mode/, 'and no dev-password hint')

  const stranger = await new Browser(hub.publicUrl).login('nobody', 'whatever-password')
  t.equal(stranger.status, 403, 'someone not on the roster cannot sign up')
  t.same(await hub.db.selectFrom('users').select('name').where('name', '=', 'nobody').execute(), [], 'no user row written')

  const short = await new Browser(hub.publicUrl).login('stu1', 'short')
  t.equal(short.status, 403)
  t.match(short.body, /at least 8 characters/)

  const first = new Browser(hub.publicUrl)
  const ok = await first.login('stu1', 'correct horse battery')
  t.equal(ok.status, 200)
  t.equal(ok.url, `${hub.publicUrl}/hub/home`, 'first sign-in sets the password and signs in')
  const row = await hub.db.selectFrom('users').select('password_hash').where('name', '=', 'stu1').executeTakeFirstOrThrow()
  t.match(row.password_hash, /^\$2[aby]\$10\$/, 'stored as a bcrypt hash')
  t.notMatch(row.password_hash, /correct horse/, 'never the password')

  const wrong = await new Browser(hub.publicUrl).login('stu1', 'wrong password here')
  t.equal(wrong.status, 403, 'the password is now required')
  const again = await new Browser(hub.publicUrl).login('stu1', 'correct horse battery')
  t.equal(again.url, `${hub.publicUrl}/hub/home`, 'and works')

  await new Browser(hub.publicUrl).login('stu2', 'the real password')
  for (let i = 0; i < 5; i++) await new Browser(hub.publicUrl).login('stu2', `guess number ${i}`)
  const blocked = await new Browser(hub.publicUrl).login('stu2', 'the real password')
  t.match(blocked.body, /Too many failed attempts/, 'after 5 failures even the right password is refused for a while')
  t.not(blocked.url, `${hub.publicUrl}/hub/home`)
  const stillBlocked = await new Browser(hub.publicUrl).login('stu1', 'correct horse battery')
  t.equal(stillBlocked.url, `${hub.publicUrl}/hub/home`, 'the limit is per account: others are not locked out')
})

t.test('the failure limiter is a sliding window', async t => {
  let now = 0
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 1000, now: () => now })
  l.fail('a'); l.fail('a')
  t.equal(l.blockedFor('a'), 0)
  l.fail('a')
  t.equal(l.blockedFor('a'), 1)
  now = 1001
  t.equal(l.blockedFor('a'), 0, 'old failures age out')
  l.fail('a'); l.clear('a')
  t.equal(l.blockedFor('a'), 0, 'a success clears')
})
