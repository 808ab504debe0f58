/**
 * A missing system package skips a test outside CI and fails it in CI (CI=true), so a green CI
 * run cannot hide a compatibility or browser test that did not run.
 */
import t from 'tap'
import { missingPackage, needs, which } from './helpers/requirements.js'

/** Records what missingPackage registers, running the body against a recorder of its own. */
function recorder() {
  const seen: Array<{ name: string; skip?: string; failed?: string }> = []
  const tap = {
    test(name: string, a: unknown, b?: unknown) {
      if (typeof a === 'function') {
        const entry: { name: string; failed?: string } = { name }
        ;(a as (tt: unknown) => void)({ fail: (m: string) => { entry.failed = m }, end: () => {} })
        seen.push(entry)
      } else {
        seen.push({ name, skip: (a as { skip: string }).skip })
        void b
      }
    },
  }
  return { tap: tap as Parameters<typeof missingPackage>[0], seen }
}

t.test('outside CI a missing package is a skip that says why', async t => {
  const { tap, seen } = recorder()
  missingPackage(tap, 'browser pages', 'chromium is not installed', {})
  t.same(seen, [{ name: 'browser pages', skip: 'chromium is not installed' }])
  t.equal(needs(false, 'no psycopg2', {}), 'no psycopg2')
  t.equal(needs(true, 'no psycopg2', {}), false, 'present: runs')
})

t.test('in CI a missing package is a failure that names it', async t => {
  const { tap, seen } = recorder()
  missingPackage(tap, 'browser pages', 'chromium is not installed', { CI: 'true' })
  t.equal(seen.length, 1)
  t.match(seen[0], { name: 'browser pages', failed: /^chromium is not installed; CI=true/ })
  t.throws(() => needs(false, 'no psycopg2', { CI: 'true' }), /no psycopg2; CI=true/)
  t.equal(needs(true, 'no psycopg2', { CI: 'true' }), false)
})

t.test('which finds executables on PATH only', async t => {
  t.equal(which('node', process.env.PATH), which('node'))
  t.ok(which('sh', '/bin:/usr/bin'), 'sh is on a normal PATH')
  t.equal(which('no-such-command-here', '/bin:/usr/bin'), undefined)
})
