/**
 * `activity-storm`: activity reports for `users` distinct users as fast as the connections allow,
 * the intake path N servers hit when their report interval is shortened.
 */
import type { StepContext } from '../step.js'
import { cannon, prepare, record, type Case } from './autocannon.js'
import { DEFAULTS, type Scenario } from './scenario.js'

export async function runActivityStormStep(ctx: StepContext): Promise<void> {
  const { hubUrl, token, names } = await prepare(ctx)
  const headers = { authorization: `token ${token}`, 'content-type': 'application/json' }
  let i = 0
  const c: Case = {
    key: 'POST /hub/api/users/{name}/activity', url: hubUrl,
    // every user in turn, as N servers reporting on a short interval would
    request: () => ({ method: 'POST', path: `/hub/api/users/${names[i++ % names.length]}/activity`, headers, body: JSON.stringify({ last_activity: new Date().toISOString() }) }),
  }
  record(ctx, c.key, await cannon(ctx, c, Math.max(1, Math.round(ctx.config.durationMs / 1000))))
}

export const activityStorm: Scenario<'activity-storm'> = {
  name: 'activity-storm',
  defaults: DEFAULTS,
  stopsAtBreakingStep: false,
  runStep: runActivityStormStep,
}
