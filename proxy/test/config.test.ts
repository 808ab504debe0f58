import t from 'tap'
import { HelpRequested, parseProxyConfig } from '../src/config.js'
import { ProxyError } from '../src/errors.js'

t.test('defaults follow CHP', async t => {
  const c = parseProxyConfig([], {})
  t.match(c, { ip: '', port: 8000, apiIp: 'localhost', apiPort: 8001, authToken: undefined, keepAliveTimeoutMs: 5000,
    includePrefix: true, xForward: true, hostRouting: false, logLevel: 'info', wsIdleTimeoutMs: 600_000 })
  t.ok(Object.isFrozen(c))
})

t.test('the hub command line', async t => {
  const c = parseProxyConfig(['--ip', '127.0.0.1', '--port', '19000', '--api-ip', '127.0.0.1', '--api-port', '19001',
    '--error-target', 'http://127.0.0.1:19010/hub/error', '--log-level', 'info'], { CONFIGPROXY_AUTH_TOKEN: 'abc' })
  t.match(c, { ip: '127.0.0.1', port: 19000, apiPort: 19001, errorTarget: 'http://127.0.0.1:19010/hub/error/', authToken: 'abc' })
})

t.test('api port follows --port; port 0 gives an ephemeral api port', async t => {
  t.equal(parseProxyConfig(['--port', '9000'], {}).apiPort, 9001)
  t.equal(parseProxyConfig(['--port', '0'], {}).apiPort, 0)
  t.equal(parseProxyConfig(['--port', '0', '--api-port', '0'], {}).apiPort, 0)
})

t.test('negations and extensions', async t => {
  const c = parseProxyConfig(['--no-include-prefix', '--no-x-forward', '--host-routing', '--custom-header', 'X-A: 1',
    '--timeout', '100', '--proxy-timeout', '200', '--ready-file', '/tmp/r', '--ws-idle-timeout', '0', '--ip', '*'], {})
  t.match(c, { includePrefix: false, xForward: false, hostRouting: true, customHeaders: { 'x-a': '1' },
    timeoutMs: 100, proxyTimeoutMs: 200, readyFile: '/tmp/r', wsIdleTimeoutMs: 0, ip: '' })
})

t.test('bad input: one error listing every problem, stable code', async t => {
  const cases: Array<[string[], RegExp]> = [
    [['--port', 'abc'], /--port must be an integer/],
    [['--port', '70000'], /--port must be an integer in \[0, 65535\]/],
    [['--port', '9000', '--api-port', '9000'], /must differ/],
    [['--log-level', 'loud'], /--log-level must be one of/],
    [['--default-target', 'not a url'], /--default-target must be an absolute/],
    [['--error-target', 'ftp://x/'], /must be http or https/],
    [['--ssl-key', 'k'], /--ssl-key and --ssl-cert go together/],
    [['--ssl-ca', 'c'], /needs --ssl-key and --ssl-cert/],
    [['--socket', '/tmp/s'], /--socket .* not supported/],
    [['--storage-backend', 'x'], /--storage-backend is not supported/],
    [['--ssl-allow-rc4'], /RC4/],
    [['--redirect-port', '80'], /needs --ssl-key/],
    [['--error-target', 'http://h/', '--error-path', '/tmp'], /exclusive/],
    [['--custom-header', 'nocolon'], /--custom-header must be/],
    [['--bogus'], /Unknown option '--bogus'/],
  ]
  for (const [argv, re] of cases) {
    const err = t.throws(() => parseProxyConfig(argv, {})) as ProxyError
    t.equal(err.code, 'PROXY_CONFIG_INVALID', argv.join(' '))
    t.match(err.message, re, argv.join(' '))
  }
  const many = t.throws(() => parseProxyConfig(['--port', 'x', '--log-level', 'y'], {})) as ProxyError
  t.match(many.message, /--port[\s\S]*--log-level/, 'all problems in one error')
})

t.test('--help', async t => {
  let caught: unknown
  try { parseProxyConfig(['--help'], {}) } catch (err) { caught = err }
  t.ok(caught instanceof HelpRequested)
})

t.test('the public port listens with a deep backlog (a class arriving at once), capped by the kernel', async t => {
  const { execFileSync } = await import('node:child_process')
  const fs = await import('node:fs')
  const { startTestProxy } = await import('./fixtures.js')
  t.equal(parseProxyConfig([], {}).listenBacklog, 4096)
  t.equal(parseProxyConfig(['--listen-backlog', '100'], {}).listenBacklog, 100)
  t.throws(() => parseProxyConfig(['--listen-backlog', '0'], {}), ProxyError)
  let ss = true
  try { execFileSync('ss', ['-V'], { stdio: 'ignore' }) } catch { ss = false }
  if (!ss || !fs.existsSync('/proc/sys/net/core/somaxconn')) { t.skip('needs ss and /proc/sys/net/core/somaxconn to read a listen backlog'); return }
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim())
  // ss shows a listening socket's backlog as its Send-Q
  const backlogOf = (port: number) => Number(execFileSync('ss', ['-ltnH', `( sport = :${port} )`], { encoding: 'utf8' }).trim().split(/\s+/)[2])
  for (const [flags, want] of [[[], Math.min(4096, somaxconn)], [['--listen-backlog', '100'], Math.min(100, somaxconn)]] as const) {
    const proxy = await startTestProxy([...flags])
    t.teardown(() => proxy.close())
    t.equal(backlogOf(proxy.port), want, `${flags.join(' ') || 'default'}: backlog ${want} (somaxconn ${somaxconn})`)
  }
})
