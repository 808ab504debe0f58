/**
 * Start (or reach) the target the config names: the whole fleethub stack, JupyterHub 3.0 + CHP +
 * sim-servers, or a URL. A new kind of target is one module beside this one and one branch here.
 */
import type { Logger } from '../../../core/src/log.js'
import type { LoadtestConfig } from '../loadtest-config.js'
import { externalTarget } from './external.js'
import { clusterNodesFor, startFleethubTarget } from './fleethub.js'
import { startJupyterhubTarget } from './jupyterhub.js'
import type { Target } from './target.js'
import { scenarioOf } from '../scenarios/index.js'

/** `kind`: `fleethub`, `jupyterhub` or a hub's public URL (`--target`; `--compare` starts both in turn). */
export async function startTarget(kind: string, config: LoadtestConfig, profileDir: string | undefined, workDir: string, log: Logger): Promise<Target> {
  if (kind === 'fleethub') {
    return startFleethubTarget({
      spawner: config.spawner, activityIntervalMs: config.activityIntervalMs, concurrentSpawnLimit: config.concurrentSpawnLimit, adminUser: 'lt1uadmin',
      profile: profileDir ? config.profile : 'none', profileDir, serverStartTime: config.serverStartTime, workDir, log,
      kubeNodes: clusterNodesFor(config.steps), workers: config.workers,
      cull: scenarioOf(config).needs?.culler ? config.cull : undefined,
    })
  }
  if (kind === 'jupyterhub') {
    return startJupyterhubTarget({ activityIntervalMs: config.activityIntervalMs, concurrentSpawnLimit: config.concurrentSpawnLimit, adminUser: 'lt1uadmin', serverStartTime: config.serverStartTime, database: config.jupyterhubDb, workDir, log })
  }
  return externalTarget(kind, config.password!)
}
