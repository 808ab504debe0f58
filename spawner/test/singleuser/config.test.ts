import t from 'tap'
import { parseSingleUserConfig } from '../../src/singleuser/config.js'

const ENV = {
  JUPYTERHUB_API_TOKEN: 'secret', JUPYTERHUB_CLIENT_ID: 'jupyterhub-user-carol-foo', JUPYTERHUB_USER: 'carol',
  JUPYTERHUB_SERVER_NAME: 'foo', JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api/',
  JUPYTERHUB_OAUTH_CALLBACK_URL: '/user/carol/foo/oauth_callback', JUPYTERHUB_BASE_URL: '/',
  JUPYTERHUB_SERVICE_PREFIX: '/user/carol/foo/', JUPYTERHUB_SERVICE_URL: 'http://127.3.0.7:8888/user/carol/foo/',
  JUPYTERHUB_OAUTH_ACCESS_SCOPES: '["access:servers!server=carol/foo", "access:servers!user=carol"]',
  JUPYTERHUB_ACTIVITY_URL: 'http://127.0.0.1:8081/hub/api/users/carol/activity', JUPYTERHUB_ACTIVITY_INTERVAL: '10',
}

t.test('the contract environment of a named server', async t => {
  const c = parseSingleUserConfig(ENV)
  t.match(c, {
    user: 'carol', serverName: 'foo', prefix: '/user/carol/foo/', apiUrl: 'http://127.0.0.1:8081/hub/api',
    apiToken: 'secret', host: '127.3.0.7', port: 8888, activityIntervalMs: 10_000, clientId: 'jupyterhub-user-carol-foo',
    accessScopes: ['access:servers!server=carol/foo', 'access:servers!user=carol'],
  })
  t.ok(Object.isFrozen(c))
})

t.test('defaults: deprecated token alias, activity URL and interval, scopes, prefix from the service URL', async t => {
  const { JUPYTERHUB_API_TOKEN, JUPYTERHUB_ACTIVITY_URL, JUPYTERHUB_ACTIVITY_INTERVAL, JUPYTERHUB_OAUTH_ACCESS_SCOPES, JUPYTERHUB_SERVICE_PREFIX, ...rest } = ENV
  const c = parseSingleUserConfig({ ...rest, JPY_API_TOKEN: 'old' })
  t.match(c, { apiToken: 'old', activityUrl: 'http://127.0.0.1:8081/hub/api/users/carol/activity', activityIntervalMs: 300_000,
    accessScopes: ['access:servers!server=carol/foo', 'access:servers!user=carol'], prefix: '/user/carol/foo/' })
})

t.test('one error lists every problem', async t => {
  t.throws(() => parseSingleUserConfig({ JUPYTERHUB_ACTIVITY_INTERVAL: 'soon', JUPYTERHUB_OAUTH_ACCESS_SCOPES: '{}' }), {
    code: 'SINGLEUSER_CONFIG_INVALID',
    message: /JUPYTERHUB_USER is missing[\s\S]*JUPYTERHUB_API_URL is missing[\s\S]*JUPYTERHUB_CLIENT_ID is missing[\s\S]*JUPYTERHUB_OAUTH_CALLBACK_URL is missing[\s\S]*JUPYTERHUB_API_TOKEN is missing[\s\S]*JUPYTERHUB_SERVICE_URL is missing[\s\S]*ACTIVITY_INTERVAL[\s\S]*JSON list/,
  })
  t.throws(() => parseSingleUserConfig({ ...ENV, JUPYTERHUB_API_URL: 'ftp://x', JUPYTERHUB_SERVICE_PREFIX: 'user/x' }),
    { message: /JUPYTERHUB_API_URL must be an http\(s\) URL[\s\S]*must start and end with '\/'/ })
})

t.test('JUPYTERHUB_DEFAULT_URL: optional, a path inside the server', async t => {
  t.equal(parseSingleUserConfig(ENV).defaultUrl, undefined)
  t.equal(parseSingleUserConfig({ ...ENV, JUPYTERHUB_DEFAULT_URL: '' }).defaultUrl, undefined, 'empty is unset')
  t.equal(parseSingleUserConfig({ ...ENV, JUPYTERHUB_DEFAULT_URL: '/lab/tree/{odd}.ipynb' }).defaultUrl, '/lab/tree/{odd}.ipynb', 'the hub expanded it already: braces are literal')
  for (const bad of ['lab', '//evil.example', '/\\evil']) {
    t.throws(() => parseSingleUserConfig({ ...ENV, JUPYTERHUB_DEFAULT_URL: bad }), { code: 'SINGLEUSER_CONFIG_INVALID', message: /JUPYTERHUB_DEFAULT_URL: expected a path starting with '\/'/ }, bad)
  }
})
