import { loadKubernetesSpawner, type KubernetesSpawnerConfigInput, type Spawner } from '../../spawner/src/index.js'
import type { HubConfig } from './config.js'
import type { Logger } from '../../core/src/log.js'

/**
 * The Kubernetes spawner with the hub's settings: the `kubernetes` section of the config file,
 * the cluster from `KUBECONFIG` (or in-cluster), and the hub's start timeout unless the section
 * sets its own. Loaded only when `--spawner kubernetes` asks for it.
 */
export async function createHubKubernetesSpawner(config: HubConfig, log: Logger, env: Readonly<Record<string, string | undefined>>): Promise<Spawner> {
  const input = { startTimeoutMs: config.startTimeout * 1000, ...config.kubernetes } as KubernetesSpawnerConfigInput
  const spawner = await loadKubernetesSpawner(input, { log, env })
  // Without a first list the hub cannot tell running pods from stopped ones: wait for it, bounded.
  const timeoutMs = 120_000
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([spawner.ready(), new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`could not list pods from the cluster within ${timeoutMs / 1000} s; check KUBECONFIG and RBAC`)), timeoutMs)
    })])
  } catch (err) {
    await spawner.close()
    throw err
  } finally {
    clearTimeout(timer)
  }
  return spawner
}
