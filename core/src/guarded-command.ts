/**
 * How fleethub runs the processes it owns (the embedded Postgres, the proxy child): each in its
 * own process group, so that Ctrl-C in a terminal (SIGINT to the whole foreground group) or a
 * service manager signalling the group reaches only fleethub, which then stops things in order:
 * user servers and the proxy first, the database last (issue #13). In the same group, Postgres
 * got the signal at the same moment as the hub and shut down under the hub's own shutdown, which
 * then could not record or stop the user servers.
 *
 * Out of our group a child would outlive a fleethub that is killed outright (SIGKILL, OOM), so it
 * also gets a parent-death signal: util-linux's `setpriv --pdeathsig` sets PR_SET_PDEATHSIG and
 * execs the command, so the pid stays the command's own and no watchdog process is needed.
 */
import { execFile } from 'node:child_process'

export interface GuardedCommand {
  readonly file: string
  readonly args: readonly string[]
  /** Spawn in a new process group (and session): true when the parent-death signal is set. */
  readonly detached: boolean
}

let probe: Promise<boolean> | undefined

/** Whether `setpriv --pdeathsig` works here (Linux, util-linux 2.33+); asked once per process. */
function canSetParentDeathSignal(): Promise<boolean> {
  probe ??= process.platform !== 'linux' ? Promise.resolve(false) : new Promise(resolve => {
    execFile('setpriv', ['--pdeathsig', 'TERM', '--', 'true'], { timeout: 5000 }, err => resolve(!err))
  })
  return probe
}

/**
 * `file args`, to be stopped by us in order, and sent `signal` if we die first. Without setpriv
 * the child stays in our process group, as before: a group signal then reaches it directly, but
 * it never outlives an interactive session.
 */
export async function guardedCommand(file: string, args: readonly string[], signal: 'SIGINT' | 'SIGTERM'): Promise<GuardedCommand> {
  if (!await canSetParentDeathSignal()) return { file, args, detached: false }
  return { file: 'setpriv', args: ['--pdeathsig', signal, '--', file, ...args], detached: true }
}
