/**
 * `fleethub start` (embedded Postgres unless DATABASE_URL is set, the proxy as a child, the hub)
 * and `fleethub hub` (the same against DATABASE_URL only). The only place that reads argv/env.
 */
import cluster from 'node:cluster'
import os from 'node:os'
import path from 'node:path'
import { ConfigError, HUB_HELP, parseHubConfig, type HubConfig } from './config.js'
import { createLogger, type Logger } from '../../core/src/log.js'
import { startEmbeddedPostgres, type RunningPostgres } from '../../core/src/embedded-postgres.js'
import { createConfiguredSpawner } from './spawners.js'
import { startHub, type HubStack } from './stack.js'
import { AUTHENTICATORS } from './auth/authenticators.js'
import { createDb, migrateToLatest } from './db.js'
import { childProxyOptions, ProxyProcess } from './proxy/proxy-process.js'
import { reportWorkerFailure, serveAsWorker, startPrimary, workerArgs, type Primary } from './workers.js'

function banner(publicUrl: string, config: HubConfig): string {
  const url = publicUrl.replace('//127.0.0.1:', '//localhost:')
  const lines = [
    '', `  fleethub is running at ${url}${config.workers > 1 ? ` (${config.workers} hub workers)` : ''}`, '',
    `  ${AUTHENTICATORS[config.authenticator].describe(config)}`,
    `  data: ${config.dataDir}${config.databaseUrl ? ' (database: DATABASE_URL)' : ' (embedded Postgres)'}`,
    '  press Ctrl-C to stop', '',
  ]
  return lines.join('\n') + '\n'
}

/**
 * SIGINT and SIGTERM run `stop` once, then exit 0 (1 if it failed); a second signal exits at once.
 * Returns whether a stop has begun.
 */
function onStopSignals(log: Logger, stop: () => Promise<void>): () => boolean {
  let stopping: Promise<void> | undefined
  const onSignal = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting now')
      process.exit(1)
    }
    log.info({ signal }, 'shutting down')
    stopping = stop().then(() => log.info('stopped'))
    stopping.then(() => process.exit(0), err => { log.error({ err }, 'shutdown failed'); process.exit(1) })
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  return () => stopping !== undefined
}

/** How long `fleethub hub` drains on SIGTERM (the deploy's terminationGracePeriodSeconds covers it). */
const HUB_DRAIN_MS = 30_000

async function run(argv: string[], env: NodeJS.ProcessEnv, embedded: boolean): Promise<number> {
  let config: HubConfig & { help: boolean }
  try {
    config = parseHubConfig([...argv, ...workerArgs(env)], env)
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
  if (cluster.isWorker) return runWorker(config, env, log)
  if (config.workers > 1) return runPrimary(config, log, embedded)
  let pg: RunningPostgres | undefined
  let stack: HubStack | undefined
  onStopSignals(log, async () => {
    // `fleethub hub` (a replica behind a Service, told to go by SIGTERM after its preStop): stop
    // accepting, let requests and spawns in flight finish (deploy/src/render.ts's HUB_DRAIN_S).
    // `fleethub start` on a laptop: Ctrl-C means now.
    await stack?.close(embedded ? undefined : { drainMs: HUB_DRAIN_MS })
    await pg?.stop()
  })
  try {
    let databaseUrl = config.databaseUrl
    if (!databaseUrl) {
      pg = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'pgdata'), log: log.child({ component: 'postgres' }) })
      databaseUrl = pg.socketUrl
    }
    const spawner = await createConfiguredSpawner(config, log, env)
    stack = await startHub({ config, databaseUrl, log, spawner })
    process.stdout.write(banner(stack.publicUrl, config))
  } catch (err) {
    log.error({ err: err instanceof Error ? err.message : String(err) }, 'fleethub could not start')
    await stack?.close()
    await pg?.stop()
    return 1
  }
  await new Promise(() => { /* run until a signal */ })
  return 0
}

/** One worker of `--workers N`: a whole hub on the shared port, told when to go by the primary. */
async function runWorker(config: HubConfig, env: NodeJS.ProcessEnv, log: Logger): Promise<number> {
  let stack: HubStack | undefined
  try {
    const spawner = await createConfiguredSpawner(config, log, env)
    stack = await startHub({ config, databaseUrl: config.databaseUrl!, log, spawner })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    log.error({ err: message }, 'hub worker could not start')
    reportWorkerFailure(message)
    await stack?.close({ cleanupServers: false })
    return 1
  }
  await serveAsWorker(stack, log)
  process.exit(0) // the IPC channel to the primary would keep the process alive
}

/** `--workers N`: the shared parts (Postgres, proxy), then the workers; SIGHUP replaces them one at a time. */
async function runPrimary(config: HubConfig, log: Logger, embedded: boolean): Promise<number> {
  let pg: RunningPostgres | undefined
  let primary: Primary | undefined
  const stopping = onStopSignals(log, async () => {
    await primary?.close()
    await pg?.stop()
  })
  process.on('SIGHUP', () => {
    if (stopping() || !primary) return
    primary.rollingRestart().catch(err => log.error({ err: String(err) }, 'rolling restart failed'))
  })
  try {
    let databaseUrl = config.databaseUrl
    if (!databaseUrl && embedded) {
      pg = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'pgdata'), log: log.child({ component: 'postgres' }) })
      databaseUrl = pg.socketUrl
    }
    if (config.migrate) {
      const { db } = createDb({ url: databaseUrl!, poolSize: 1 })
      try {
        const applied = await migrateToLatest(db)
        if (applied.length > 0) log.info({ applied }, 'database migrated')
      } finally { await db.destroy() }
    }
    primary = await startPrimary({
      config, log, databaseUrl: databaseUrl!,
      startProxy: config.proxy !== 'child' ? undefined : async hubUrl => {
        const api = new URL(config.proxyApiUrl)
        const proxy = new ProxyProcess(childProxyOptions(config, { hubUrl, databaseUrl: databaseUrl!, log: log.child({ component: 'proxy-process' }) }))
        const ends = await proxy.start()
        return {
          apiUrl: `http://${api.hostname}:${ends.apiPort}`,
          publicUrl: `http://${config.ip === '0.0.0.0' ? os.hostname() : config.ip}:${ends.port}`,
          close: () => proxy.close(),
        }
      },
    })
    process.stdout.write(banner(primary.publicUrl, config))
  } catch (err) {
    log.error({ err: err instanceof Error ? err.message : String(err) }, 'fleethub could not start')
    await primary?.close()
    await pg?.stop()
    return 1
  }
  await new Promise(() => { /* run until a signal */ })
  return 0
}

export const startMain = (argv: string[], env: NodeJS.ProcessEnv) => run(argv, env, true)
export const hubMain = (argv: string[], env: NodeJS.ProcessEnv) => run(argv, env, false)
export type { Logger }
