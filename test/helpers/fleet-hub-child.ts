/**
 * A fleet hub in a process of its own, for tests that SIGKILL a hub (run with `node --import tsx`).
 * Env: DB_URL, PROXY_API_URL, CONFIGPROXY_AUTH_TOKEN. Its spawner is the instant one, except that
 * a start for a user whose name begins with `hang` and a stop of a user beginning with `slowstop`
 * never finish: they are the spawns and stops in flight that the kill leaves behind. Prints one
 * JSON line once ready: {"hubUrl": …, "hubId": …}.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseHubConfig } from '../../hub/src/config.js'
import { createLogger } from '../../core/src/log.js'
import { startHub } from '../../hub/src/stack.js'
import type { Spawner } from '../../spawner/src/index.js'
import { createInstantSpawner } from './instant-spawner.js'

const never = (signal?: AbortSignal) => new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }))

function hangingSpawner(): Spawner {
  const inner = createInstantSpawner()
  return {
    ...inner,
    kind: inner.kind,
    async start(spec, opts) {
      if (spec.user.startsWith('hang')) {
        opts.progress({ progress: 20, message: 'Hanging on purpose' })
        opts.saveState({ port: 9, hung: true })
        return never(opts.signal)
      }
      return inner.start(spec, opts)
    },
    async stop(state, who) {
      if (who.user.startsWith('slowstop')) return never()
      return inner.stop(state, who)
    },
    poll: (state, who) => inner.poll(state, who),
    close: () => inner.close(),
  }
}

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-child-'))
const config = parseHubConfig(['--port', '0', '--hub-port', '0', '--proxy', 'external', '--proxy-api-url', process.env.PROXY_API_URL!,
  '--data-dir', dataDir, '--no-migrate', '--log-level', 'silent', '--last-activity-interval', '3600', '--admin-users', 'admin'], process.env)
const stack = await startHub({ config, databaseUrl: process.env.DB_URL!, log: createLogger('silent'), spawner: hangingSpawner(), activityFlushMs: 100, slowSpawnTimeoutMs: 1000 })
process.stdout.write(`${JSON.stringify({ hubUrl: stack.hubUrl, hubId: stack.fleet.hubId })}\n`)
