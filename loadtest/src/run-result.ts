/**
 * What one single-target run records: run.ts fills it in, report.ts renders it, compare.ts keeps
 * one per target. (Its own module, so report.ts and run.ts do not import each other.)
 */
import type { HubProfile } from './hub-profile.js'
import type { LoadtestConfig } from './loadtest-config.js'
import type { ResourcePoint } from './resources.js'
import type { StepResult } from './step.js'
import type { FdLimitLine } from './fd-limits.js'

/** What the steps add up to (run.ts summarizeRun). */
export interface RunSummary {
  /** Each SLO that broke, and the first step (not generator-saturated) where it did. */
  readonly firstBroken: Readonly<Record<string, number>>
  /** The same, over the saturated steps only (not counted as the system's limit). */
  readonly firstBrokenSaturated: Readonly<Record<string, number>>
  /** The first unhealthy step that the generator did not limit: the system's breaking point. */
  readonly breakingStep: number | null
  /** The first step where more than 5% of users failed, or null. */
  readonly servingStoppedAt: number | null
  readonly saturatedSteps: readonly number[]
  readonly unhealthySteps: readonly number[]
}

export interface RunResult {
  readonly scenario: string
  readonly label: string
  readonly command: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly config: LoadtestConfig
  readonly machine: Readonly<Record<string, unknown>>
  readonly versions: Readonly<Record<string, string>>
  readonly target: Readonly<Record<string, unknown>>
  readonly steps: StepResult[]
  /** Index of the first unhealthy step whose generator was not saturated, or null (summary.unhealthySteps has every unhealthy one). */
  readonly breakingStep: number | null
  /** Filled in at the end of the run (absent in a --compare target's run). */
  summary?: RunSummary
  /** Set when the run was cut short: `SIGINT`, `SIGTERM`, or the error it threw. The steps so far are kept. */
  interrupted?: string
  /** Every process the target started, as recorded (targets/pid-registry.ts), and whether any outlived the run. */
  processes?: ReadonlyArray<{ readonly name: string; readonly pid: number }>
  leftovers?: ReadonlyArray<{ readonly name: string; readonly pid: number }>
  /** Open-file limits at start: each connection-holding process's limit and the users it allows (fd-limits.ts). */
  fdLimits?: ReadonlyArray<FdLimitLine>
  readonly resources: ResourcePoint[]
  /** Where the report went (set by the caller after writing). */
  reportDir?: string
  /** With --profile hub: the flamegraph's file name in the report folder. */
  flamegraph?: string
  /** The processes' logs kept with the report (keep-logs.ts: a step unhealthy or the run failed), relative to it. */
  logs?: string[]
  /** With --profile hub: the flamegraph, the raw profile and their figures; `missing` when the hub wrote none. */
  profile?: HubProfile | { readonly missing: string }
}
