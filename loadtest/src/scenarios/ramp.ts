/**
 * `ramp`: steps of growing classes (class-start then steady at each) until one breaks an SLO: the
 * breaking point. Servers abandoned in one step stay running into the next.
 */
import { DEFAULTS, type Scenario } from './scenario.js'
import { runUsersStep } from './users.js'

export const ramp: Scenario<'ramp'> = {
  name: 'ramp',
  defaults: { ...DEFAULTS, steps: [600, 1000, 2000, 5000, 10_000, 20_000] },
  stopsAtBreakingStep: true,
  runStep: runUsersStep,
}
