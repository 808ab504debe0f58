/** What a scenario step gets from the runner, and what one step records. */
import type { AcceptQueueSummary } from './accept-queue.js'
import type { LoadtestConfig } from './loadtest-config.js'
import type { LatencySummary, Recorder, SeriesPoint } from './histogram.js'
import type { ResourcePoint } from './resources.js'
import type { UserState, UserTally } from './simulated-user.js'
import type { Target } from './targets/target.js'

/**
 * A simulated user as the runner sees it: a SimulatedUser in this process, or a stand-in for one
 * in a child generator (generator/child-generators.ts) whose tally and state come over IPC.
 */
export interface UserHandle {
  readonly tally: UserTally
  readonly state: UserState
  /** End a silent user's websocket (the runner calls this when the run ends). */
  close(): void
}

/** What one child generator process reported over a step (generator/child-generators.ts). */
export interface GeneratorChildReport {
  readonly pid: number | undefined
  /** Users dealt to it. */
  readonly users: number
  /** Its CPU each second, % of one core (process.cpuUsage deltas). */
  readonly cpu: number[]
  /** Its event-loop delay p99 each second, ms (monitorEventLoopDelay). */
  readonly lagP99s: number[]
  /** Set when it exited before its users finished: its exit code or signal. */
  crashed?: string
}

export interface StepContext {
  readonly config: LoadtestConfig
  readonly target: Target
  readonly recorder: Recorder
  /** Users in this step (or distinct users for the API scenarios). */
  readonly users: number
  readonly index: number
  /** Unique per step, so every step's users are new (`lt1u`, `lt2u`…). */
  readonly namePrefix: string
  /** Every simulated user created in this step (the runner closes silent ones at the end). */
  readonly users_: UserHandle[]
  /** Child generator processes that ran this step's users (none when in-process, generator/child-generators.ts). */
  readonly generators: GeneratorChildReport[]
  /** Autocannon results by endpoint key. */
  readonly autocannon: Record<string, AutocannonSummary>
  onState(from: UserState | undefined, to: UserState): void
}

export interface AutocannonSummary {
  readonly url: string
  readonly connections: number
  readonly durationS: number
  readonly requests: number
  readonly rps: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}

export interface ProcessSummary {
  readonly cpuMean: number
  readonly cpuMax: number
  readonly rssMaxMb: number
  readonly fdsMax: number
  /**
   * The root process's open-file limit (RLIMIT_NOFILE soft, /proc/<pid>/limits) at its lowest over
   * the step; null when unread. For a tree (postgres, user servers) fdsMax is the tree's sum and
   * this the root's own limit.
   */
  readonly fdLimit?: number | null
  readonly procsMax: number
}

/** One generator process's load over a step: the runner's own (`parent`) or a child's. */
export interface GeneratorProcess {
  readonly name: string
  readonly pid?: number
  /** Users it ran (the parent: those run in-process, 0 when children ran them all). */
  readonly users: number
  readonly cpuMean: number
  readonly lagP99Median: number
  readonly lagP99Max: number
  readonly crashed?: string
}

/** Whether the load generator, rather than the system, limited a step (run.ts generatorVerdict). */
export interface GeneratorVerdict {
  readonly saturated: boolean
  /** Its CPU over the step, % of one core: the busiest generator process's. */
  readonly cpuMean: number
  /** The median over the step of each second's event-loop delay p99, ms: the worst generator process's. */
  readonly lagP99Median: number
  /** The worst second's event-loop delay p99, ms, over every generator process. */
  readonly lagP99Max: number
  /** How many processes generated the load (1: in-process); absent in older reports. */
  readonly count?: number
  /** Each generator process's figures, the parent first; absent in older reports. */
  readonly processes?: readonly GeneratorProcess[]
  /** Why saturated (empty when not). */
  readonly reasons: string[]
}

export interface StepTally {
  readonly users: number
  readonly loggedIn: number
  readonly spawned: number
  readonly stopped: number
  readonly failed: number
  readonly echoes: number
  readonly messagesSent: number
  readonly retries429: number
}

export interface StepResult {
  readonly index: number
  readonly users: number
  readonly startedAt: string
  readonly durationS: number
  readonly counts: Record<string, number>
  /** Example messages of failures, by outcome. */
  readonly notes: Record<string, string[]>
  readonly latencies: Record<string, LatencySummary>
  readonly series: SeriesPoint[]
  /** The users' own counters (not the recorder's), summed. */
  readonly tally: StepTally
  readonly autocannon: Record<string, AutocannonSummary>
  /** Proxy added latency: p50/p99 through the proxy minus direct, from the probe. */
  readonly proxyAdded: { readonly p50: number; readonly p99: number; readonly samples: number } | null
  readonly resources: Record<string, ProcessSummary>
  readonly loopLagP99Max: number
  readonly pgConnectionsMax: number | null
  /**
   * Accept-queue depth of the listening sockets over the step (accept-queue.ts, every 100 ms):
   * `hub` (the hub port: with --workers N the cluster primary's socket) and `proxy` (the public
   * port). Absent for an external target; a port never seen listening is undefined.
   */
  readonly acceptQueue?: { readonly hub?: AcceptQueueSummary; readonly proxy?: AcceptQueueSummary }
  /** Same as generator.saturated (older reports have only this). */
  readonly generatorLimited: boolean
  readonly generator?: GeneratorVerdict
  /** More than SERVING_STOPPED_SHARE of the step's users failed: --keep-going stops here. */
  readonly servingStopped?: boolean
  /** `broken`: the SLOs that failed, by name (run.ts SLO_NAMES, or the scenario's own); absent in older reports. */
  readonly slo: { readonly healthy: boolean; readonly failures: string[]; readonly broken?: string[] }
  /** --compare: this step's flamegraph of the hub (a file next to the report), with --profile hub. */
  flamegraph?: string
  /** Seconds since the run started, for slicing the resource series. */
  readonly fromS: number
  readonly toS: number
}

export type { ResourcePoint }
