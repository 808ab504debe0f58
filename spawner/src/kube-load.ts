/**
 * The hub's entry to the Kubernetes spawner. `@kubernetes/client-node` takes over a second to
 * import, so it is loaded only when a hub is configured for Kubernetes.
 */
import type { KubernetesSpawnerConfig, KubernetesSpawnerConfigInput } from './kube-config.js'
import type { KubernetesSpawner, KubernetesSpawnerDeps } from './kubernetes.js'

export type { KubernetesSpawner, KubernetesSpawnerDeps, OrphanPod } from './kubernetes.js'

/** Import the client, build the spawner and start its informers (see `createKubernetesSpawner`). */
export async function loadKubernetesSpawner(config: KubernetesSpawnerConfigInput | KubernetesSpawnerConfig, deps: KubernetesSpawnerDeps): Promise<KubernetesSpawner> {
  const { createKubernetesSpawner } = await import('./kubernetes.js')
  return createKubernetesSpawner(config, deps)
}
