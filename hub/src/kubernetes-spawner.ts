import type { Spawner } from '../../spawner/src/index.js'
import type { HubConfig } from './config.js'
import type { Logger } from './log.js'

/** Wires the Kubernetes spawner to the hub's config (see spawner/src/kubernetes.ts). */
export async function createHubKubernetesSpawner(_config: HubConfig, _log: Logger, _env: Readonly<Record<string, string | undefined>>): Promise<Spawner> {
  throw new Error('the kubernetes spawner is not wired into the hub yet; use --spawner local')
}
