import path from 'node:path'
import { createLocalProcessSpawner, defaultSingleUserCommand, type Spawner } from '../../spawner/src/index.js'
import type { HubConfig } from './config.js'
import type { Logger } from '../../core/src/log.js'

/** The configured spawner. Kubernetes is loaded only when asked for (its client is large). */
export async function createConfiguredSpawner(config: HubConfig, log: Logger, env: Readonly<Record<string, string | undefined>>): Promise<Spawner> {
  if (config.spawner === 'kubernetes') {
    const k8s = await import('./kubernetes-spawner.js')
    return k8s.createHubKubernetesSpawner(config, log.child({ component: 'kubernetes' }), env)
  }
  const cmd = config.singleuserCmd ?? defaultSingleUserCommand(env.PATH)
  log.info({ cmd: cmd.join(' ') }, 'local spawner')
  return createLocalProcessSpawner({
    cmd, startTimeoutMs: config.startTimeout * 1000, env: config.environment,
    usersDir: path.join(config.dataDir, 'users'), logDir: path.join(config.dataDir, 'logs', 'servers'),
  }, { log: log.child({ component: 'local-spawner' }), hubEnv: env })
}
