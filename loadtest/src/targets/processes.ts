/**
 * How a target runs its processes: where the built CLI is, waiting for a child's HTTP port, stopping
 * a child (or a whole tree the hub leaves behind), finding a process by command line in /proc.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { guardedCommand } from '../../../core/src/guarded-command.js'
import { withRaisedFdLimit } from '../fd-limits.js'

/** The repository root, whether this file runs from loadtest/src/targets (tests) or dist/loadtest/src/targets. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir)
  return dir
}
export const REPO = repoRoot()
export const CLI = path.join(REPO, 'dist/cli/fleethub.js')
const READY_TIMEOUT_MS = 60_000

/** The pids of `pid`'s children (of each of its threads), as far as read before it exited. */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()
      if (kids) out.push(...kids.split(' ').map(Number))
    }
  } catch { /* exited */ }
  return out
}

/** Every descendant pid of `root` (not root itself). */
export function descendantsOf(root: number | undefined): number[] {
  const out: number[] = []
  const stack = root === undefined ? [] : [root]
  for (let guard = 0; stack.length > 0 && guard < 100_000; guard++) {
    const pid = stack.pop()!
    if (pid !== root) out.push(pid)
    stack.push(...childrenOf(pid))
  }
  return out
}

/** The pid of the first process in `root`'s tree whose command line matches. */
export function findInTree(root: number | undefined, match: (cmdline: string) => boolean): number | undefined {
  if (root === undefined) return undefined
  const stack = [root]
  for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
    const pid = stack.pop()!
    let cmd = ''
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') } catch { continue }
    if (match(cmd)) return pid
    stack.push(...childrenOf(pid))
  }
  return undefined
}

/** Wait until `url` answers with a status `ok` accepts; fail early when `child` exits, with the tail of its log. */
export async function waitHttp(url: string, child: ChildProcess, logFile: string, ok = (status: number) => status < 500): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.body?.cancel()
      if (ok(res.status)) return
    } catch { /* not yet */ }
    await new Promise(r => setTimeout(r, 200))
  }
  const tail = (await fsp.readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n')
  throw new Error(`${url} did not come up (${child.exitCode !== null ? `exit ${child.exitCode}` : 'timeout'}):\n${tail}`)
}

/** Signal a child and wait for its exit; SIGKILL after `timeoutMs`. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals, pid = child?.pid, timeoutMs = 90_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  pid ??= child.pid
  if (pid === undefined) return
  const exited = once(child, 'exit')
  try { process.kill(pid, signal) } catch { return }
  const timer = new Promise(r => setTimeout(r, timeoutMs).unref())
  if (await Promise.race([exited.then(() => true), timer.then(() => false)])) return
  try { child.kill('SIGKILL') } catch { /* gone */ }
  await Promise.race([exited, new Promise(r => setTimeout(r, 5000).unref())])
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** A file descriptor appending to `file`, for a child's stdout and stderr. */
export function logTo(file: string): number {
  return fs.openSync(file, 'a')
}

/** A `{min, max}` ms range as kube-sim's and sim-servers' `--start-time` take it. */
export const rangeArg = (r: { min: number; max: number } | undefined) => r ? `${r.min}ms-${r.max}ms` : '0'

/**
 * How a target starts a process it owns: its open-file limit raised as far as allowed
 * (fd-limits.ts), and sent `deathSignal` if this generator dies first (core/src/guarded-command.ts:
 * its own process group, so a Ctrl-C reaches only the generator, which stops everything in order).
 * The pid stays the command's own (setpriv and sh both exec it).
 */
export async function ownedCommand(file: string, args: readonly string[], deathSignal: 'SIGINT' | 'SIGTERM'): Promise<{ file: string; args: readonly string[]; detached: boolean }> {
  const raised = withRaisedFdLimit(file, args)
  return guardedCommand(raised.file, raised.args, deathSignal)
}
