/**
 * `fleethub singleuser`: the built-in single-user server as a process. Reads the `JUPYTERHUB_*`
 * environment the spawner passes (contract §3), binds to `JUPYTERHUB_SERVICE_URL`, runs until
 * SIGINT/SIGTERM. Exit codes: 0 stopped by a signal, 1 hub unreachable or bad environment,
 * 98 address in use (the local spawner then retries on another port).
 */
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { parseSingleUserConfig } from './config.js'
import { SingleUserError } from './errors.js'
import { createSingleUserServer } from './server.js'

export const EXIT_ADDRESS_IN_USE = 98

const HELP = `usage: fleethub singleuser [--log-level <level>]

Runs the built-in single-user server (used when jupyterhub-singleuser is not installed).
It is configured by the environment the hub's spawner sets:
  required  JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_USER, JUPYTERHUB_CLIENT_ID,
            JUPYTERHUB_OAUTH_CALLBACK_URL, JUPYTERHUB_SERVICE_URL (bind address and prefix)
  optional  JUPYTERHUB_SERVER_NAME, JUPYTERHUB_SERVICE_PREFIX, JUPYTERHUB_BASE_URL (/),
            JUPYTERHUB_ACTIVITY_URL, JUPYTERHUB_ACTIVITY_INTERVAL (300 s),
            JUPYTERHUB_OAUTH_ACCESS_SCOPES (JSON list)

options:
  --log-level <level>  pino level (default info, or debug when JUPYTERHUB_DEBUG=1)
  -h, --help           this text
`

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values
  try {
    values = parseArgs({ args: argv, options: { 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values
  } catch (err) {
    process.stderr.write(`fleethub singleuser: ${(err as Error).message}\n\n${HELP}`)
    return 2
  }
  if (values.help) { process.stdout.write(HELP); return 0 }
  const log = pino({ level: values['log-level'] ?? (env.JUPYTERHUB_DEBUG === '1' ? 'debug' : 'info'), base: { component: 'singleuser', pid: process.pid } })
  let config
  try {
    config = parseSingleUserConfig(env)
  } catch (err) {
    log.error({ code: (err as SingleUserError).code }, (err as Error).message)
    return 1
  }
  const stopping = new AbortController()
  const onSignal = (signal: string): void => { log.info({ signal }, 'stopping'); stopping.abort() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const server = await createSingleUserServer({ ...config, log, signal: stopping.signal })
    if (!stopping.signal.aborted) await new Promise(resolve => stopping.signal.addEventListener('abort', resolve, { once: true }))
    await server.close()
    return 0
  } catch (err) {
    const e = err as SingleUserError & { code?: string }
    if (e.code === 'EADDRINUSE') {
      log.error({ code: e.code, host: config.host, port: config.port }, 'address already in use')
      return EXIT_ADDRESS_IN_USE
    }
    log.error({ code: e.code, err: e.message }, 'single-user server failed')
    return 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
