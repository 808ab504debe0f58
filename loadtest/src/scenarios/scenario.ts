/**
 * What a load scenario is: one module each in this folder, listed once in index.ts. A scenario
 * names itself, gives the defaults it wants for the options it reads, says whether a ramp stops at
 * its breaking point, and runs one step; the runner does the rest (target, sampling, SLO verdict,
 * report). The table of scenarios and what each answers: shared/LOADTEST.md.
 */
import type { StepContext, StepResult } from '../step.js'

/** What a scenario's own verdict reads of a step. */
export type JudgedStep = Pick<StepResult, 'counts' | 'latencies' | 'users'>

/** The option values a scenario uses when the flag is not given. */
export interface ScenarioDefaults {
  /** Users per step without --users or --steps. */
  readonly steps: readonly number[]
  /** --arrival: arrivals spread over this duration. */
  readonly arrival: string
  /** --duration: work after the last arrival, or the load time. */
  readonly duration: string
  /** --spawner when not given (and not --compare): default local. */
  readonly spawner?: 'local' | 'kube-sim'
}

/** The defaults a scenario changes only where it needs to; also the parser's for an unknown scenario. */
export const DEFAULTS: ScenarioDefaults = { steps: [20], arrival: '30s', duration: '60s' }

export interface Scenario<N extends string = string> {
  /** The name on the command line: `fleethub loadtest <name>`. */
  readonly name: N
  readonly defaults: ScenarioDefaults
  /** Stop at the first unhealthy step (the breaking point) rather than run every step. */
  readonly stopsAtBreakingStep: boolean
  /** What the target must offer: the hub's culler on (cull), processes it can kill and restart (restart). */
  readonly needs?: { readonly culler?: boolean; readonly restart?: boolean }
  /**
   * The step's verdict in place of the default SLOs (run.ts judgeStep), for a scenario whose
   * outages are the point (restart): the failures, by SLO name.
   */
  judge?(step: JudgedStep): Array<{ slo: string; failure: string }>
  /** What `judge` checks, for the report's SLO line. */
  readonly judgeText?: string
  /** One step: `ctx.users` users (or distinct API users) against `ctx.target`, recorded in `ctx.recorder`. */
  runStep(ctx: StepContext): Promise<void>
}
