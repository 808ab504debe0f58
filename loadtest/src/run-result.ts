/**
 * What one single-target run records: run.ts fills it in, report.ts renders it, compare.ts keeps
 * one per target. (Its own module, so report.ts and run.ts do not import each other.)
 */
import type { HubProfile } from './hub-profile.js'
import type { LoadtestConfig } from './loadtest-config.js'
import type { ResourcePoint } from './resources.js'
import type { StepResult } from './step.js'

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
  /** Index of the first unhealthy step, or null when every step held. */
  readonly breakingStep: number | null
  readonly resources: ResourcePoint[]
  /** Where the report went (set by the caller after writing). */
  reportDir?: string
  /** With --profile hub: the flamegraph's file name in the report folder. */
  flamegraph?: string
  /** With --profile hub: the flamegraph, the raw profile and their figures; `missing` when the hub wrote none. */
  profile?: HubProfile | { readonly missing: string }
}
