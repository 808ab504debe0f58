/**
 * The hub's own settings (config.ts) beyond the culler's and OIDC's: flag, then env, then file, with
 * every problem listed in one HUB_BAD_CONFIG error.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
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

t.test('--default-url: JupyterHub\'s Spawner.default_url, from flag, env or file, checked', async t => {
  t.equal(parseHubConfig([], {}).defaultUrl, undefined, 'unset: the server\'s own')
  t.equal(parseHubConfig(['--default-url', '/lab'], {}).defaultUrl, '/lab')
  t.equal(parseHubConfig([], { FLEETHUB_DEFAULT_URL: '/tree' }).defaultUrl, '/tree', 'from the environment')
  t.equal(parseHubConfig(['--default-url=/lab'], { FLEETHUB_DEFAULT_URL: '/tree' }).defaultUrl, '/lab', 'the flag wins')
  t.equal(parseHubConfig(['--default-url='], {}).defaultUrl, undefined, 'empty is unset, as in JupyterHub')
  t.equal(parseHubConfig(['--default-url', '/tree/home/{username}'], {}).defaultUrl, '/tree/home/{username}', 'the {username} placeholder')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleethub-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'hub.json'), JSON.stringify({ defaultUrl: '/lab/tree/README.md' }))
  t.equal(parseHubConfig(['--config', 'hub.json'], {}, dir).defaultUrl, '/lab/tree/README.md', 'the config file key is defaultUrl')
  const bad: Array<[string, RegExp]> = [
    ['lab', /--default-url: expected a path starting with '\/' \(such as \/lab or \/tree\), got "lab"/],
    ['http://evil.example/', /got "http:\/\/evil.example\/"/],
    ['//evil.example/x', /'\/\/' starts a host, not a path/],
    ['/a b', /no spaces, backslashes or control characters/],
    ['/\\evil', /no spaces, backslashes or control characters/],
    ['/tree/{user}', /unknown placeholder \{user\} \(only \{username\}\)/],
  ]
  for (const [value, message] of bad) {
    const err = t.throws(() => parseHubConfig(['--default-url', value], {})) as ConfigError
    t.equal(err.code, 'HUB_BAD_CONFIG', `rejects ${JSON.stringify(value)}`)
    t.match(err.message, message)
  }
  await writeFile(path.join(dir, 'bad.json'), JSON.stringify({ defaultUrl: 42 }))
  t.throws(() => parseHubConfig(['--config', 'bad.json'], {}, dir), /--default-url: expected a path starting with '\/'.*got 42/, 'not a string')
  t.match(HUB_HELP, /--default-url PATH/)
  t.match(HUB_HELP, /FLEETHUB_DEFAULT_URL/)
})
