/**
 * `api`: raw request capacity. autocannon on the hot endpoints (user read, activity report, token
 * check, and the proxy's route list), each for its share of the step's duration.
 */
import type { StepContext } from '../step.js'
import { cannon, prepare, record, type Case } from './autocannon.js'
import { DEFAULTS, type Scenario } from './scenario.js'

export async function runApiStep(ctx: StepContext): Promise<void> {
  const { hubUrl, token, names } = await prepare(ctx)
  const auth = { authorization: `token ${token}` }
  let n = 0
  // every user in turn, so a short run still touches each one
  const pick = () => names[n++ % names.length]!
  const cases: Case[] = [
    { key: 'GET /hub/api/users/{name}', url: hubUrl, request: () => ({ method: 'GET', path: `/hub/api/users/${pick()}`, headers: auth }) },
    { key: 'POST /hub/api/users/{name}/activity', url: hubUrl, request: () => ({ method: 'POST', path: `/hub/api/users/${pick()}/activity`, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ last_activity: new Date().toISOString() }) }) },
    { key: 'GET /hub/api/user (token check)', url: hubUrl, request: () => ({ method: 'GET', path: '/hub/api/user', headers: auth }) },
  ]
  if (ctx.target.proxyApiUrl && ctx.target.proxyAuthToken) {
    const proxyAuth = { authorization: `token ${ctx.target.proxyAuthToken}` }
    cases.push({ key: 'GET /api/routes (proxy)', url: ctx.target.proxyApiUrl, request: () => ({ method: 'GET', path: '/api/routes', headers: proxyAuth }) })
  }
  const each = Math.max(1, Math.round(ctx.config.durationMs / 1000 / cases.length))
  for (const c of cases) record(ctx, c.key, await cannon(ctx, c, each))
}

export const api: Scenario<'api'> = {
  name: 'api',
  defaults: DEFAULTS,
  stopsAtBreakingStep: false,
  runStep: runApiStep,
}
