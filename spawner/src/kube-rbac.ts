/**
 * Exactly which Kubernetes API calls the spawner makes (kubernetes.ts), as RBAC rules for the
 * core ("") API group. deploy/ renders the hub's Role from this, and a test checks it against
 * what kube-sim recorded while the spawner ran, so the Role grants no more and no less.
 */
import type { KubernetesSpawnerConfig } from './kube-config.js'

export interface ApiUsage {
  readonly resource: 'pods' | 'events' | 'persistentvolumeclaims'
  readonly verbs: readonly string[]
}

export function spawnerApiUsage(config: Pick<KubernetesSpawnerConfig, 'pvc'>): ApiUsage[] {
  const usage: ApiUsage[] = [
    // informer (list + watch); start (create; get when a 409 names a pod the informer does not
    // select); stop, failed starts and orphans (delete)
    { resource: 'pods', verbs: ['create', 'delete', 'get', 'list', 'watch'] },
    // the event informer, for progress messages
    { resource: 'events', verbs: ['list', 'watch'] },
  ]
  // the home volume: created once; a 409 means it exists and is reused
  if (config.pvc.enabled) usage.push({ resource: 'persistentvolumeclaims', verbs: ['create'] })
  return usage
}
