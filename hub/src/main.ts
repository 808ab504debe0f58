/**
 * `fleethub start` (embedded Postgres unless DATABASE_URL is set, the proxy as a child, the hub)
 * and `fleethub hub` (the same against DATABASE_URL only). The only place that reads argv/env.
 */
import path from 'node:path'
import { ConfigError, HUB_HELP, parseHubConfig, type HubConfig } from './config.js'
import { createLogger, type Logger } from './log.js'
import { startEmbeddedPostgres, type RunningPostgres } from './embedded-postgres.js'
import { createConfiguredSpawner } from './spawners.js'
import { startHub, type HubStack } from './stack.js'

function banner(stack: HubStack, config: HubConfig): string {
  const url = stack.publicUrl.replace('//127.0.0.1:', '//localhost:')
  const lines = [
    '', `  fleethub is running at ${url}`, '',
    config.authenticator === 'native' ? '  sign-in: native accounts (passwords hashed in the database)'
      : config.authenticator === 'oidc' ? `  sign-in: OpenID Connect (${config.oidc?.issuer ?? 'issuer from config'})`
      : config.devPasswordGenerated
        ? `  development login: any username (lowercase letters, digits, . _ -), password: ${config.devPassword}`
        : '  development login: any username, with the password in FLEETHUB_DEV_PASSWORD',
    `  data: ${config.dataDir}${config.databaseUrl ? ' (database: DATABASE_URL)' : ' (embedded Postgres)'}`,
    '  press Ctrl-C to stop', '',
  ]
  return lines.join('\n') + '\n'
}

async function run(argv: string[], env: NodeJS.ProcessEnv, embedded: boolean): Promise<number> {
  let config: HubConfig & { help: boolean }
  try {
    config = parseHubConfig(argv, env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`fleethub: ${err.message}\n\n${HUB_HELP}`)
      return 2
    }
    throw err
  }
  if (config.help) {
    process.stdout.write(HUB_HELP)
    return 0
  }
  if (!embedded && !config.databaseUrl) {
    process.stderr.write('fleethub hub: set DATABASE_URL (or use `fleethub start`, which runs an embedded Postgres)\n')
    return 2
  }
  const log = createLogger(config.logLevel)
  let pg: RunningPostgres | undefined
  let stack: HubStack | undefined
  let stopping: Promise<void> | undefined
  const stop = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting now')
      process.exit(1)
    }
    log.info({ signal }, 'shutting down')
    stopping = (async () => {
      await stack?.close()
      await pg?.stop()
      log.info('stopped')
    })()
    stopping.then(() => process.exit(0), err => { log.error({ err }, 'shutdown failed'); process.exit(1) })
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  try {
    let databaseUrl = config.databaseUrl
    if (!databaseUrl) {
      pg = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'pgdata'), log: log.child({ component: 'postgres' }) })
      databaseUrl = pg.socketUrl
    }
    const spawner = await createConfiguredSpawner(config, log, env)
    stack = await startHub({ config, databaseUrl, log, spawner })
    process.stdout.write(banner(stack, config))
  } catch (err) {
    log.error({ err: err instanceof Error ? err.message : String(err) }, 'fleethub could not start')
    await stack?.close()
    await pg?.stop()
    return 1
  }
  await new Promise(() => { /* run until a signal */ })
  return 0
}

export const startMain = (argv: string[], env: NodeJS.ProcessEnv) => run(argv, env, true)
export const hubMain = (argv: string[], env: NodeJS.ProcessEnv) => run(argv, env, false)
export type { Logger }
