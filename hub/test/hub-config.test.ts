/**
 * The hub's own settings (config.ts) beyond the culler's and OIDC's: flag, then env, then file, with
 * every problem listed in one HUB_BAD_CONFIG error.
 */
import t from 'tap'
import { ConfigError, HUB_HELP, parseHubConfig } from '../src/config.js'

t.test('--db-pool-size: default 20, flag over env, bounds checked', async t => {
  t.equal(parseHubConfig([], {}).dbPoolSize, 20)
  t.equal(parseHubConfig([], { FLEETHUB_DB_POOL_SIZE: '8' }).dbPoolSize, 8, 'from the environment')
  t.equal(parseHubConfig(['--db-pool-size', '4'], { FLEETHUB_DB_POOL_SIZE: '8' }).dbPoolSize, 4, 'the flag wins')
  for (const bad of ['0', '-1', '2.5', 'many', '1001']) {
    const err = t.throws(() => parseHubConfig([`--db-pool-size=${bad}`], {})) as ConfigError
    t.equal(err.code, 'HUB_BAD_CONFIG')
    t.match(err.message, /db-pool-size: expected an integer from 1 to 1000/, `rejects ${bad}`)
  }
  t.match(HUB_HELP, /--db-pool-size N/)
})

t.test('--slow-stop-timeout: JupyterHub\'s 10 s by default, 0 allowed, from the environment too', async t => {
  t.equal(parseHubConfig([], {}).slowStopTimeout, 10)
  t.equal(parseHubConfig(['--slow-stop-timeout', '0'], {}).slowStopTimeout, 0, '0: answer 202 at once')
  t.equal(parseHubConfig([], { FLEETHUB_SLOW_STOP_TIMEOUT: '3' }).slowStopTimeout, 3)
  t.throws(() => parseHubConfig(['--slow-stop-timeout=-1'], {}), /slow-stop-timeout: expected an integer from 0 to 3600/)
  t.match(HUB_HELP, /--slow-stop-timeout S/)
})
