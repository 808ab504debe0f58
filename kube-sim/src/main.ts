/** `fleethub kube-sim`: run the simulated cluster until SIGINT/SIGTERM. */
import pino from 'pino'
import { KUBE_SIM_USAGE, parseKubeSimConfig } from './config.js'
import { createKubeSim, singleUserRuntime } from './index.js'
import { raiseFdLimit } from './fd-limit.js'

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = parseKubeSimConfig(argv, env)
  if (config.help) { process.stdout.write(KUBE_SIM_USAGE); return 0 }
  const log = pino({ level: config.logLevel, base: { component: 'kube-sim' } })
  const fds = raiseFdLimit()
  if (fds) log.info({ soft: fds.soft, hard: fds.hard, pods: fds.pods }, 'open-file limit raised as far as allowed')
  if (fds && fds.pods < config.nodes * config.nodePods) log.warn({ soft: fds.soft, hard: fds.hard, podsAllowed: fds.pods, clusterPods: config.nodes * config.nodePods }, 'the open-file limit allows fewer pods than the cluster holds')
  const sim = await createKubeSim({
    host: config.host, port: config.port, namespaces: config.namespaces,
    nodes: { count: config.nodes, cpu: config.nodeCpu, memory: config.nodeMemory, pods: config.nodePods, gpus: config.nodeGpus },
    pullTime: config.pullTime, startTime: config.startTime,
    runtime: config.runtime === 'singleuser' ? singleUserRuntime(log) : config.runtime,
    historySize: config.historySize,
    faults: { rateLimit: config.rateLimit, latencyMs: config.latencyMs, pullFailureRate: config.pullFailureRate, failImages: config.failImages },
    logger: log,
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
