/**
 * The culler's configuration, pure: the hub's `cull*` options and the standalone command's
 * jupyterhub-idle-culler options, plus the standalone command's idleness rule.
 */
import t from 'tap'
import { ConfigError, HUB_HELP, parseHubConfig } from '../src/config.js'
import { CULL_HELP, CullConfigError, cullReason, parseCullConfig } from '../src/culler/cull-cli.js'

t.test('hub: culler defaults, flags and errors', async t => {
  const d = parseHubConfig([], {})
  t.match(d, { cullIdle: true, cullTimeout: 3600, cullEvery: 300, cullMaxAge: 0, cullUsers: false, cullConcurrency: 10, cullAdminUsers: true, cullRemoveNamedServers: false })
  const c = parseHubConfig(['--no-cull-idle', '--cull-timeout', '900', '--cull-every', '60', '--cull-max-age', '86400', '--cull-users',
    '--cull-concurrency', '25', '--no-cull-admin-users', '--cull-remove-named-servers'], {})
  t.match(c, { cullIdle: false, cullTimeout: 900, cullEvery: 60, cullMaxAge: 86400, cullUsers: true, cullConcurrency: 25, cullAdminUsers: false, cullRemoveNamedServers: true })
  t.ok(Object.isFrozen(c))
  const err = t.throws(() => parseHubConfig(['--cull-timeout', '0', '--cull-concurrency', 'many'], {})) as ConfigError
  t.equal(err.code, 'HUB_BAD_CONFIG')
  t.match(err.message, /cull-timeout: expected an integer from 1/)
  t.match(err.message, /cull-concurrency: expected an integer from 1 to 1000/, 'every problem is listed')
  t.match(HUB_HELP, /--cull-timeout S/)
})

t.test('standalone: jupyterhub-idle-culler defaults', async t => {
  const c = parseCullConfig([], { JUPYTERHUB_API_TOKEN: 'secret-token-0123456789' })
  t.match(c, { url: 'http://localhost:8081/hub/api', token: 'secret-token-0123456789', timeout: 600, cullEvery: 300, once: false, maxAge: 0,
    cullUsers: false, removeNamedServers: false, concurrency: 10, cullAdminUsers: true, pageSize: 0, dryRun: false, requestTimeout: 60 })
  t.equal(parseCullConfig(['--timeout', '100', '--cull-every', '0'], { JUPYTERHUB_API_TOKEN: 'x' }).cullEvery, 50, '--cull-every 0 means timeout/2, as theirs')
  t.equal(parseCullConfig(['--cull-every', '7'], { JUPYTERHUB_API_TOKEN: 'x' }).cullEvery, 7)
  t.equal(parseCullConfig(['--token', 'flag'], { JUPYTERHUB_API_TOKEN: 'env' }).token, 'flag')
  t.equal(parseCullConfig([], { JUPYTERHUB_API_TOKEN: 'x', JUPYTERHUB_API_URL: 'http://hub:8081/hub/api' }).url, 'http://hub:8081/hub/api')
  t.ok(parseCullConfig(['--help'], {}).help, '--help needs no token')
  t.match(CULL_HELP, /--remove-named-servers/)
})

t.test('standalone: bad options are all reported', async t => {
  const err = t.throws(() => parseCullConfig(['--url', 'ftp://x', '--concurrency', '0', '--max-age=-1'], {})) as CullConfigError
  t.equal(err.code, 'CULL_BAD_CONFIG')
  for (const want of [/--url: expected an http/, /--concurrency/, /--max-age/, /no token/]) t.match(err.message, want)
  t.throws(() => parseCullConfig(['--bogus'], { JUPYTERHUB_API_TOKEN: 'x' }), { code: 'CULL_BAD_CONFIG' })
  t.throws(() => parseCullConfig(['--url', 'not a url'], { JUPYTERHUB_API_TOKEN: 'x' }), /not a URL/)
})

t.test('standalone: which servers are idle', async t => {
  const now = Date.parse('2026-11-28T12:00:00Z')
  const rules = { timeout: 600, maxAge: 0 }
  t.same(cullReason({ last_activity: '2026-11-28T11:49:00Z', started: '2026-11-28T08:00:00Z' }, rules, now), { rule: 'idle', idle: 660 })
  t.equal(cullReason({ last_activity: '2026-11-28T11:55:00Z', started: '2026-11-28T08:00:00Z' }, rules, now), undefined, 'five minutes is not idle')
  t.same(cullReason({ last_activity: null, started: '2026-11-28T11:00:00Z' }, rules, now), { rule: 'idle', idle: 3600 }, 'no activity: counted from the start')
  t.equal(cullReason({ last_activity: null, started: null }, rules, now), undefined, 'nothing to judge by: left alone')
  t.same(cullReason({ last_activity: '2026-11-28T11:59:00Z', started: '2026-11-28T08:00:00Z' }, { timeout: 600, maxAge: 3600 }, now), { rule: 'max-age', idle: 60 })
  t.equal(cullReason({ last_activity: '2026-11-28T11:59:00Z', started: '2026-11-28T11:30:00Z' }, { timeout: 600, maxAge: 3600 }, now), undefined, 'young and active')
})
