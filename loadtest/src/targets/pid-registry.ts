/**
 * Every process a target started, recorded as it is seen (the hub, the proxy it runs, user
 * servers, Postgres, kube-sim, JupyterHub, CHP, sim-servers), so that a run leaves nothing behind
 * however it ends (issue #16: after a 10,000-user run the proxy was still running ten minutes
 * later). A pid is kept with its start time (/proc/<pid>/stat field 22), so a pid the kernel
 * reuses for an unrelated process is never signalled. Stopping is by pid only.
 */
import fs from 'node:fs'
import { descendantsOf } from './processes.js'

export interface RecordedProcess { readonly name: string; readonly pid: number }

/** A process's start time in clock ticks since boot, or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // a zombie has exited: it only waits for its parent to reap it
    return f[0] === 'Z' ? undefined : f[19]
  } catch { return undefined }
}

export class PidRegistry {
  readonly #seen = new Map<number, { name: string; start: string }>()

  /** Note `pid` under `name` (the first name it was seen under stays). */
  record(name: string, pid: number | undefined): void {
    if (pid === undefined || this.#seen.has(pid)) return
    const start = startTime(pid)
    if (start !== undefined) this.#seen.set(pid, { name, start })
  }

  /** Note `root` and every descendant it has now, the descendants under `childName`. */
  recordTree(name: string, root: number | undefined, childName = `${name}-child`): void {
    this.record(name, root)
    for (const pid of descendantsOf(root)) this.record(childName, pid)
  }

  /** Everything recorded, in the order seen. */
  list(): RecordedProcess[] {
    return [...this.#seen].map(([pid, { name }]) => ({ name, pid }))
  }

  /** The recorded processes still running (the same process: its start time unchanged). */
  alive(): RecordedProcess[] {
    return [...this.#seen].filter(([pid, { start }]) => startTime(pid) === start).map(([pid, { name }]) => ({ name, pid }))
  }

  /**
   * Stop what is still running after the target's orderly stop: SIGTERM, up to `graceMs` to exit,
   * then SIGKILL. Returns what had to be signalled here (each one a finding: it outlived its stop).
   */
  async stopAll(graceMs = 10_000): Promise<RecordedProcess[]> {
    const left = this.alive()
    if (left.length === 0) return []
    for (const p of left) signal(p.pid, 'SIGTERM')
    const deadline = Date.now() + graceMs
    while (Date.now() < deadline && this.alive().length > 0) await new Promise(r => setTimeout(r, 100))
    for (const p of this.alive()) signal(p.pid, 'SIGKILL')
    for (let i = 0; i < 50 && this.alive().length > 0; i++) await new Promise(r => setTimeout(r, 100))
    return left
  }

  /** SIGKILL everything still running, at once (a second Ctrl-C). */
  killAllNow(): void {
    for (const p of this.alive()) signal(p.pid, 'SIGKILL')
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch { /* gone */ }
}
