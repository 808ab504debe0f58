/** `class-start`: N students arrive over two minutes, log in, spawn, open their server, work, leave. */
import { DEFAULTS, type Scenario } from './scenario.js'
import { runUsersStep } from './users.js'

export const classStart: Scenario<'class-start'> = {
  name: 'class-start',
  defaults: { ...DEFAULTS, arrival: '120s' },
  stopsAtBreakingStep: false,
  runStep: runUsersStep,
}
