#!/usr/bin/env node
/**
 * `fleethub-proxy` / `fleethub proxy`: a CHP 5.3 drop-in. Parses argv+env, starts the servers,
 * writes --pid-file and --ready-file, stops on SIGINT/SIGTERM (exit 0).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { HelpRequested, parseProxyConfig, USAGE } from './config.js'
import { ProxyError } from './errors.js'
import { createRootLogger } from './log.js'
import { createProxy } from './server.js'
import { isProxyWorker, reportWorkerReady, startProxyPrimary } from './workers.js'

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config
  try {
    config = parseProxyConfig(argv, env)
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(USAGE)
      return 0
    }
    if (err instanceof ProxyError) {
      process.stderr.write(`fleethub-proxy: ${err.message}\n\n${USAGE}`)
      return 2
    }
    throw err
  }
  const log = createRootLogger(config.logLevel)
  const worker = isProxyWorker()
  let proxy: { port: number; apiPort: number; bootId: string; close(): Promise<void> }
  if (config.workers > 1 && !worker) {
    const primary = await startProxyPrimary({ count: config.workers, port: config.port, ip: config.ip, apiPort: config.apiPort, apiIp: config.apiIp, log })
    proxy = { port: primary.port, apiPort: primary.apiPort, bootId: randomUUID(), close: () => primary.close() }
    log.info({ port: primary.port, apiPort: primary.apiPort, workers: primary.workers() }, 'proxy workers listening')
  } else {
    proxy = await createProxy(config, { log })
  }
  if (worker) {
    reportWorkerReady({ port: proxy.port, apiPort: proxy.apiPort, bootId: proxy.bootId })
    // the primary decides when workers stop (a terminal's Ctrl-C reaches the whole group)
    process.on('SIGINT', () => undefined)
    return new Promise<number>(resolve => {
      const stop = () => { void proxy.close().then(() => resolve(0), () => resolve(1)) }
      process.once('SIGTERM', stop)
      process.once('disconnect', stop)
    })
  }
  if (config.pidFile !== undefined) await writeAtomically(config.pidFile, `${process.pid}\n`)
  if (config.readyFile !== undefined) {
    await writeAtomically(config.readyFile, JSON.stringify({ port: proxy.port, apiPort: proxy.apiPort, pid: process.pid, bootId: proxy.bootId }))
  }
  return new Promise<number>(resolve => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping')
      const files = [config.pidFile, config.readyFile].filter((f): f is string => f !== undefined)
      void proxy.close()
        .then(() => Promise.all(files.map(f => rm(f, { force: true }))))
        .then(() => resolve(0), (err: unknown) => { log.error({ err }, 'error while stopping'); resolve(1) })
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

/** Write to a temp file in the same folder, then rename: readers never see half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, text, { mode: 0o644 })
  await rename(tmp, path)
}

function isEntryPoint(): boolean {
  if (process.argv[1] === undefined) return false
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2), process.env).then(
    code => { process.exit(code) },
    (err: unknown) => {
      process.stderr.write(`fleethub-proxy: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
      process.exit(1)
    },
  )
}
