/**
 * `fleethub loadtest <scenario> …`: the only place that reads argv/env for the load test. Prints
 * the live display on stderr and the summary table on stdout; exit 0 when every step held its
 * SLOs, 1 when one did not (or the run failed), 2 on bad usage.
 */
import { ConfigError, LOADTEST_HELP, parseLoadtestConfig, type LoadtestConfig } from './config.js'
import { createLogger, prettyStream } from '../../hub/src/log.js'
import { runLoadtest } from './run.js'
import { renderMarkdown } from './report.js'

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
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
  const result = await runLoadtest(config, { log, command: ['fleethub', 'loadtest', ...argv].join(' ') })
  const md = renderMarkdown(result)
  process.stdout.write(md.split('\n### ')[0] + '\n')
  return result.breakingStep === null ? 0 : 1
}
