/**
 * What the pod informer keeps of each pod: only the fields poll, start, stop and the orphan
 * report read. A user pod is ~3 KB of JSON (spec, env, status) and several times that as JS
 * objects; at 10k pods the full objects cost the hub hundreds of MB for nothing.
 */

/** A pod reduced to identity, labels/annotations, deletion, phase, IP, conditions, container state. */
export function slimPod(pod: any): any {
  if (pod === null || typeof pod !== 'object') return pod
  const m = pod.metadata ?? {}
  const s = pod.status ?? {}
  const c = s.containerStatuses?.[0]
  return {
    metadata: {
      name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion,
      labels: m.labels, annotations: m.annotations,
      ...(m.deletionTimestamp !== undefined && m.deletionTimestamp !== null ? { deletionTimestamp: m.deletionTimestamp } : {}),
    },
    status: {
      phase: s.phase, podIP: s.podIP, reason: s.reason, message: s.message,
      conditions: s.conditions?.map((x: any) => ({ type: x.type, status: x.status })),
      containerStatuses: c === undefined ? undefined : [{ state: c.state }],
    },
  }
}
