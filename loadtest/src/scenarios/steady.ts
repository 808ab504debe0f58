/** `steady`: N active users hold for ten minutes (websockets, HTTP, activity reports), then leave by the mix. */
import { DEFAULTS, type Scenario } from './scenario.js'
import { runUsersStep } from './users.js'

export const steady: Scenario<'steady'> = {
  name: 'steady',
  defaults: { ...DEFAULTS, duration: '10m' },
  stopsAtBreakingStep: false,
  runStep: runUsersStep,
}
