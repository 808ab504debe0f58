/**
 * A whole hub for end-to-end tests: a fresh database, the hub on port 0, the real proxy as a
 * child process on ephemeral ports, and the local spawner running the built-in single-user
 * server from dist/ (run `npm run build` first; `npm test` does).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Spawner } from '../../spawner/src/index.js'
import { createLocalProcessSpawner, builtInServerScript } from '../../spawner/src/local-process.js'
import { parseHubConfig, type HubConfig } from '../../hub/src/config.js'
import { createLogger } from '../../core/src/log.js'
import { startHub, type HubStack } from '../../hub/src/stack.js'
import type { FleetOptions } from '../../hub/src/fleet/fleet.js'
import { createTestDatabase } from './db.js'

export const DEV_PASSWORD = 'test-password-123'

interface T { teardown(fn: () => unknown): void }

export interface TestHub extends HubStack {
  readonly config: HubConfig
  readonly databaseUrl: string
  readonly dataDir: string
}

export function builtInCommand(): string[] {
  return [process.execPath, builtInServerScript(), 'singleuser']
}

/** `databaseUrl`: join another test hub's database (a second hub of the same fleet) instead of a fresh one. */
export async function startTestHub(t: T, o: { args?: string[]; env?: Record<string, string>; spawner?: (config: HubConfig, dataDir: string) => Spawner; logLevel?: string; slowSpawnTimeoutMs?: number; databaseUrl?: string; fleet?: FleetOptions } = {}): Promise<TestHub> {
  const url = o.databaseUrl ?? (await createTestDatabase(t)).url
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-hub-test-'))
  t.teardown(() => fs.rm(dataDir, { recursive: true, force: true }))
  const config = parseHubConfig(['--port', '0', '--hub-port', '0', '--proxy-api-url', 'http://127.0.0.1:0', '--data-dir', dataDir,
    '--no-migrate', '--log-level', o.logLevel ?? 'silent', '--last-activity-interval', '3600', ...(o.args ?? [])],
  { FLEETHUB_DEV_PASSWORD: DEV_PASSWORD, ...o.env })
  const log = createLogger(config.logLevel)
  const spawner = o.spawner?.(config, dataDir) ?? createLocalProcessSpawner({
    cmd: config.singleuserCmd ?? builtInCommand(), startTimeoutMs: config.startTimeout * 1000,
    usersDir: path.join(dataDir, 'users'), logDir: path.join(dataDir, 'logs'), env: config.environment,
  }, { log, hubEnv: process.env })
  const stack = await startHub({ config, databaseUrl: url, log, spawner, activityFlushMs: 100, slowSpawnTimeoutMs: o.slowSpawnTimeoutMs ?? 5000, fleet: o.fleet })
  t.teardown(() => stack.close())
  return Object.assign(Object.create(null), stack, { config, databaseUrl: url, dataDir }) as TestHub
}
