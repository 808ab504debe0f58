/** `fleethub kube-sim`: run the simulated cluster until SIGINT/SIGTERM. */
import pino from 'pino'
import { KUBE_SIM_USAGE, parseKubeSimConfig } from './config.js'
import { createKubeSim, singleUserRuntime } from './index.js'
import { raiseFdLimit } from './fd-limit.js'
import { podHostsFor, podHostsRuntime, podsPerHost } from './pod-hosts.js'

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = parseKubeSimConfig(argv, env)
  if (config.help) { process.stdout.write(KUBE_SIM_USAGE); return 0 }
  const log = pino({ level: config.logLevel, base: { component: 'kube-sim' } })
  const fds = raiseFdLimit()
  const clusterPods = config.nodes * config.nodePods
  // pod hosts inherit this raised limit (and raise their own as far again): each holds its share of the pods
  const hosts = config.runtime === 'none' ? 0 : config.podHosts === 'auto' ? podHostsFor(clusterPods, fds?.soft) : config.podHosts
  if (fds) {
    const podsAllowed = hosts > 0 ? hosts * podsPerHost(fds.soft) : fds.pods
    log.info({ soft: fds.soft, hard: fds.hard, pods: podsAllowed, podHosts: hosts }, 'open-file limit raised as far as allowed')
    if (podsAllowed < clusterPods) log.warn({ soft: fds.soft, hard: fds.hard, podsAllowed, clusterPods, podHosts: hosts }, 'the open-file limit allows fewer pods than the cluster holds')
  }
  const runtime = hosts > 0 ? podHostsRuntime(log, { hosts, runtime: config.runtime === 'singleuser' ? 'singleuser' : 'http' })
    : config.runtime === 'singleuser' ? singleUserRuntime(log) : config.runtime
  const sim = await createKubeSim({
    host: config.host, port: config.port, namespaces: config.namespaces,
    nodes: { count: config.nodes, cpu: config.nodeCpu, memory: config.nodeMemory, pods: config.nodePods, gpus: config.nodeGpus },
    pullTime: config.pullTime, startTime: config.startTime, runtime,
    historySize: config.historySize,
    faults: { rateLimit: config.rateLimit, latencyMs: config.latencyMs, pullFailureRate: config.pullFailureRate, failImages: config.failImages },
    logger: log,
  }).catch(async (err: unknown) => {
    // the pod hosts' IPC channels would keep this process alive after the error
    if (typeof runtime === 'object') await runtime.close?.()
    throw err
  })
  if (config.writeKubeconfig !== undefined) await sim.writeKubeconfig(config.writeKubeconfig, config.namespaces[0])
  process.stdout.write(`kube-sim listening on ${sim.url}${config.writeKubeconfig !== undefined ? ` (kubeconfig: ${config.writeKubeconfig})` : ''}\n`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await sim.close()
  return 0
}
