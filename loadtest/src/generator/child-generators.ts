/**
 * A user step dealt over child generator processes (--generators, loadtest-config.ts
 * generatorProcesses; issue: "the generator must not be the bottleneck"). Each child (worker.ts)
 * runs users i with i % N = its number, against the same t0 and the same plan as in-process; its
 * batches (batch.ts) merge into the step's one Recorder, and its users appear to the runner as
 * RemoteUser handles. A child that exits before it is done fails its unfinished users (with a
 * note), and the step goes on. Children never outlive the run: they exit when their IPC channel
 * closes, the runner stops them (stopGeneratorChildren), and this process kills any left when it exits.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { siblingEntry } from '../../../core/src/supervision.js'
import type { VisitPlan } from '../scenarios/users.js'
import type { UserState, UserTally } from '../simulated-user.js'
import type { GeneratorChildReport, StepContext, UserHandle } from '../step.js'
import { applyBatch, epochNow, type Batch, type ChildMessage, type StartMessage } from './batch.js'

/** A child that has not said ready by then is stopped (its users fail): a start under tsx takes about a second. */
const READY_TIMEOUT_MS = 60_000
/** After its IPC channel is closed, a child has this long to exit before it is killed by pid. */
const KILL_GRACE_MS = 2000
const STDERR_TAIL_CHARS = 2000

// worker.js beside this file in dist/, worker.ts under tsx (the tests)
const ENTRY = siblingEntry(import.meta.url, 'worker')

/** Every child generator not yet exited. */
const LIVE = new Set<ChildProcess>()
let exitHooked = false

function killNow(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ }
}

function register(child: ChildProcess): void {
  LIVE.add(child)
  child.once('exit', () => LIVE.delete(child))
  if (exitHooked) return
  exitHooked = true
  // a crash or process.exit() of the runner (a second Ctrl-C): synchronous, by pid
  process.on('exit', () => { for (const c of LIVE) killNow(c) })
}

/** Close a child's IPC channel (it exits on that); kill it by pid if it is still there after KILL_GRACE_MS. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve()
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  if (child.connected) child.disconnect()
  const timer = setTimeout(() => killNow(child), KILL_GRACE_MS)
  return exited.finally(() => clearTimeout(timer))
}

/** Stop every child generator still running and wait for them to exit (the run's end: an interrupted step's children too). */
export async function stopGeneratorChildren(): Promise<void> {
  await Promise.all([...LIVE].map(stopChild))
}

/** A user run by a child generator: its state follows the child's batches, its tally arrives when its visit ends. */
export class RemoteUser implements UserHandle {
  readonly tally: UserTally = { loggedIn: false, spawned: false, stopped: false, echoes: 0, messagesSent: 0, retries429: 0 }
  state: UserState = 'waiting'
  /** Whether the runner has seen it arrive (it is in ctx.users_). */
  arrived = false
  readonly #close: () => void

  constructor(close: () => void) { this.#close = close }

  finish(state: UserState, tally: UserTally): void {
    this.state = state
    Object.assign(this.tally, tally)
  }

  /** Its silent websocket lives in the child: closing ends the child (after the step every user there has left). */
  close(): void { this.#close() }
}

const TERMINAL: ReadonlySet<UserState> = new Set(['done', 'failed', 'silent'])

/** One child generator, seen from the runner. */
class ChildGenerator {
  readonly report: GeneratorChildReport
  readonly ready: Promise<void>
  /** Resolves when the child is done or has exited; never rejects. */
  readonly ended: Promise<void>
  done = false
  readonly #child: ChildProcess
  readonly #users: Map<number, RemoteUser>
  readonly #ctx: StepContext
  #stderr = ''

  constructor(readonly number: number, readonly indices: number[], ctx: StepContext) {
    this.#ctx = ctx
    const child = fork(ENTRY.file, [], { execArgv: ENTRY.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.#child = child
    register(child)
    this.report = { pid: child.pid, users: indices.length, cpu: [], lagP99s: [] }
    ctx.generators.push(this.report)
    this.#users = new Map(indices.map(i => [i, new RemoteUser(() => void this.stop())]))
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (d: string) => { this.#stderr = (this.#stderr + d).slice(-STDERR_TAIL_CHARS) })
    let isReady!: () => void
    this.ready = new Promise(resolve => { isReady = resolve })
    const readyTimer = setTimeout(() => { this.#stderr += `\nnot ready after ${READY_TIMEOUT_MS} ms`; void this.stop() }, READY_TIMEOUT_MS)
    this.ended = new Promise(resolve => {
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') { clearTimeout(readyTimer); isReady() }
        else if (m.type === 'batch') this.#apply(m)
        else if (m.type === 'done') {
          this.done = true
          // a child whose users all left holds nothing: stop it now; else at the run's end (RemoteUser.close)
          if (m.silent === 0) void this.stop()
          resolve()
        }
      })
      // 'close', not 'exit': it comes after the last IPC message has been read
      child.once('close', (code, signal) => {
        clearTimeout(readyTimer)
        if (!this.done) this.#failUnfinished(signal ?? `exit code ${code}`)
        isReady()
        resolve()
      })
      // a failed spawn still ends in 'close'
      child.once('error', err => { this.#stderr += `\n${err.message}` })
    })
  }

  start(m: StartMessage): void {
    if (this.#child.connected) this.#child.send(m)
  }

  #stopping: Promise<void> | undefined
  /** Once, however many of its users ask (the run's end closes every silent user: hundreds per child). */
  stop(): Promise<void> { return (this.#stopping ??= stopChild(this.#child)) }

  #apply(b: Batch): void {
    const ctx = this.#ctx
    applyBatch(ctx.recorder, b)
    for (const [i, from, to] of b.states) {
      const u = this.#users.get(i)
      if (!u) continue
      if (from === null) { u.arrived = true; ctx.users_.push(u) }
      u.state = to
      ctx.onState(from ?? undefined, to)
    }
    for (const f of b.finished) this.#users.get(f.index)?.finish(f.state, f.tally)
    for (const l of b.load) { this.report.cpu.push(l.cpu); this.report.lagP99s.push(l.lagP99) }
  }

  /** The child exited before it was done: every user of its not yet left fails, as a user that threw does in-process. */
  #failUnfinished(why: string): void {
    const ctx = this.#ctx, r = ctx.recorder
    this.report.crashed = why
    let unfinished = 0
    for (const u of this.#users.values()) {
      if (TERMINAL.has(u.state)) continue
      unfinished++
      r.count('failed:generator_exit')
      r.count(`failed_in:${u.state}`)
      const from = u.arrived ? u.state : undefined
      if (!u.arrived) { u.arrived = true; ctx.users_.push(u) }
      ctx.onState(from, 'failed')
      u.state = 'failed'
    }
    if (unfinished === 0) return
    const tail = this.#stderr.trim().split('\n').slice(-3).join(' | ')
    r.note('failed:generator_exit', `generator child ${this.number} (pid ${this.#child.pid}) exited (${why}) with ${unfinished} of its ${this.indices.length} users unfinished${tail ? `: ${tail}` : ''}`)
  }
}

/** Run the step's users in `n` child generators, user i in child i % n, and wait until every one is done or gone. */
export async function runUsersInChildren(ctx: StepContext, n: number, plan: VisitPlan): Promise<void> {
  const dealt = Array.from({ length: n }, (_, k) => plan.arrivals.map((_, i) => i).filter(i => i % n === k))
  const children = dealt.map((indices, k) => new ChildGenerator(k + 1, indices, ctx))
  try {
    await Promise.all(children.map(c => c.ready))
    // the shared clock starts once every child can start on it, as in-process it starts at once
    const t0Epoch = epochNow()
    const workUntilEpoch = t0Epoch + ctx.config.arrivalMs + ctx.config.durationMs
    for (const c of children) c.start({ type: 'start', plan, indices: c.indices, t0Epoch, workUntilEpoch })
    await Promise.all(children.map(c => c.ended))
  } finally {
    for (const c of children) if (!c.done) void c.stop()
  }
}
