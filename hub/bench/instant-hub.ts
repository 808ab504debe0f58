/**
 * `fleethub hub [--workers N]` with the instant spawner (test/helpers/instant-spawner.ts), for the
 * spawn-rate part of api.bench.ts: the CLI cannot be given a spawner of code, so this is main.ts's
 * hub path (one hub, or a node:cluster primary and N workers through hub/src/workers.ts) with that
 * one difference. Run as `node --import tsx hub/bench/instant-hub.ts <fleethub hub args>`; env as
 * for `fleethub hub` (DATABASE_URL, FLEETHUB_DEV_PASSWORD, CONFIGPROXY_AUTH_TOKEN). Prints the hub
 * URL as one JSON line once ready; SIGTERM stops it.
 */
import cluster from 'node:cluster'
import { parseHubConfig } from '../src/config.js'
import { createLogger } from '../../core/src/log.js'
import { ProxyProcess } from '../src/proxy/proxy-process.js'
import { startHub, type HubStack } from '../src/stack.js'
import { serveAsWorker, startPrimary, workerArgs, type Primary } from '../src/workers.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'

const config = parseHubConfig([...process.argv.slice(2), ...workerArgs(process.env)], process.env)
const log = createLogger(config.logLevel)
const databaseUrl = config.databaseUrl ?? process.env.DATABASE_URL!

if (cluster.isWorker) {
  const stack = await startHub({ config, databaseUrl, log, spawner: createInstantSpawner() })
  await serveAsWorker(stack, log)
  process.exit(0)
} else if (config.workers > 1) {
  const primary: Primary = await startPrimary({
    config, log, databaseUrl,
    startProxy: async hubUrl => {
      const api = new URL(config.proxyApiUrl)
      const proxy = new ProxyProcess({ ip: '127.0.0.1', port: config.port, apiIp: api.hostname, apiPort: Number(api.port), errorTarget: `${hubUrl}/hub/error`,
        authToken: config.proxyAuthToken, logLevel: 'error', log: log.child({ component: 'proxy-process' }) })
      const ends = await proxy.start()
      return { apiUrl: `http://${api.hostname}:${ends.apiPort}`, publicUrl: `http://127.0.0.1:${ends.port}`, close: () => proxy.close() }
    },
  })
  process.stdout.write(`${JSON.stringify({ hubUrl: primary.hubUrl, workers: primary.workers() })}\n`)
  const stop = () => { primary.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
} else {
  const stack: HubStack = await startHub({ config, databaseUrl, log, spawner: createInstantSpawner() })
  process.stdout.write(`${JSON.stringify({ hubUrl: stack.hubUrl, workers: [process.pid] })}\n`)
  const stop = () => { stack.close().then(() => process.exit(0), () => process.exit(1)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
