/**
 * What a load scenario is: one module each in this folder, listed once in index.ts. A scenario
 * names itself, gives the defaults it wants for the options it reads, says whether a ramp stops at
 * its breaking point, and runs one step; the runner does the rest (target, sampling, SLO verdict,
 * report). The table of scenarios and what each answers: shared/LOADTEST.md.
 */
import type { StepContext } from '../step.js'

/** The option values a scenario uses when the flag is not given. */
export interface ScenarioDefaults {
  /** Users per step without --users or --steps. */
  readonly steps: readonly number[]
  /** --arrival: arrivals spread over this duration. */
  readonly arrival: string
  /** --duration: work after the last arrival, or the load time. */
  readonly duration: string
}

/** The defaults a scenario changes only where it needs to; also the parser's for an unknown scenario. */
export const DEFAULTS: ScenarioDefaults = { steps: [20], arrival: '30s', duration: '60s' }

export interface Scenario<N extends string = string> {
  /** The name on the command line: `fleethub loadtest <name>`. */
  readonly name: N
  readonly defaults: ScenarioDefaults
  /** Stop at the first unhealthy step (the breaking point) rather than run every step. */
  readonly stopsAtBreakingStep: boolean
  /** One step: `ctx.users` users (or distinct API users) against `ctx.target`, recorded in `ctx.recorder`. */
  runStep(ctx: StepContext): Promise<void>
}
