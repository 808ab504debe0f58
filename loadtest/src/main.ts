/**
 * `fleethub loadtest <scenario> …`: the only place that reads argv/env for the load test. Prints
 * the live display on stderr and the summary table on stdout; exit 0 when every step held its
 * SLOs, 1 when one did not (or the run failed), 2 on bad usage, 130 when interrupted (SIGINT or
 * SIGTERM: the run stops its processes and writes its report first).
 */
import { ConfigError, LOADTEST_HELP, parseLoadtestConfig } from './config.js'
import type { LoadtestConfig } from './loadtest-config.js'
import { createLogger, prettyStream } from '../../core/src/log.js'
import { RunInterrupted, runLoadtest } from './run.js'
import { renderMarkdown } from './report.js'
import { renderCompareMarkdown, runCompare } from './compare.js'

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  // not a scenario: the virtual-server host JupyterHub's spawner talks to (sim-servers.ts)
  if (argv[0] === 'sim-servers') return (await import('./sim-servers.js')).simServersMain(argv.slice(1), env)
  let config: LoadtestConfig
  try {
    config = parseLoadtestConfig(argv, env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`fleethub loadtest: ${err.message}\n\n${LOADTEST_HELP}`)
      return 2
    }
    throw err
  }
  if (config.help) {
    process.stdout.write(LOADTEST_HELP)
    return 0
  }
  const log = createLogger(env.LOADTEST_LOG_LEVEL ?? 'warn', prettyStream(process.stderr))
  // the hub's worker count from the environment belongs in the command the report quotes
  // and so does the proxy count the hub reads from it (FLEETHUB_PROXIES: several route-store proxies)
  const fromEnv = (config.workers > 1 && !argv.some(a => a === '--workers' || a.startsWith('--workers=')) ? `FLEETHUB_WORKERS=${config.workers} ` : '') +
    (env.FLEETHUB_PROXIES !== undefined && env.FLEETHUB_PROXIES !== '' ? `FLEETHUB_PROXIES=${env.FLEETHUB_PROXIES} ` : '')
  const command = fromEnv + ['fleethub', 'loadtest', ...argv].join(' ')
  if (config.compare === 'jupyterhub') {
    const c = await runCompare(config, { log, command })
    process.stdout.write(renderCompareMarkdown(c).split('\n# Each target in detail')[0] + '\n')
    return c.runs.fleethub.breakingStep === null && c.runs.jupyterhub.breakingStep === null ? 0 : 1
  }
  let result
  try {
    result = await runLoadtest(config, { log, command, handleSignals: true })
  } catch (err) {
    // interrupted before the first step: the target is stopped, there is no report
    if (err instanceof RunInterrupted) { process.stderr.write(`fleethub loadtest: interrupted (${err.message}) before the first step\n`); process.exit(130) }
    throw err
  }
  const md = renderMarkdown(result)
  process.stdout.write(md.split('\n### ')[0] + '\n')
  // an interrupted step's users still wait on timers against the stopped target: exit now, its report is written
  if (result.interrupted) process.exit(130)
  return (result.summary?.unhealthySteps.length ?? 0) === 0 ? 0 : 1
}
