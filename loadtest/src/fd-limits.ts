/**
 * Open files as a resource (issue #16): each process that holds connections per user (the proxy,
 * kube-sim, the load generator) raises its RLIMIT_NOFILE soft limit as far as the machine allows
 * when it starts, and the run says at its start how many users each limit allows where it is too
 * low. Node has no setrlimit: a child is started through `sh -c 'ulimit -n …; exec "$@"'` (the
 * pid stays the command's: sh execs it), and the generator raises its own with `prlimit --pid`.
 * As root with CAP_SYS_RESOURCE the hard limit goes up to fs.nr_open too; in a container without
 * that capability (this machine's: root, hard limit 20,000) only the soft limit can rise to the hard.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

export interface FdLimit { readonly soft: number; readonly hard: number }

/**
 * Open file descriptors a user costs each process: a websocket through the proxy holds two (the
 * client's and the upstream one); a virtual server in kube-sim its listening socket and the
 * proxy's upstream connection; the generator the user's websocket and its share of the HTTP pool.
 * Seen in issue #16's 10,000-user campus run: the proxy and kube-sim each at 20,000 open files.
 */
export const FDS_PER_USER: Readonly<Record<string, number>> = { proxy: 2, 'kube-sim': 2, 'sim-servers': 2, generator: 2 }
/** The highest limit asked for: fs.nr_open's default. */
const WANTED_MAX = 1_048_576

/** `Max open files` of a process from /proc/<pid>/limits, or undefined when it cannot be read. */
export function readFdLimit(pid: number): FdLimit | undefined {
  try {
    const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find(l => l.startsWith('Max open files'))
    const m = line && /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(line)
    if (!m) return undefined
    const n = (x: string) => x === 'unlimited' ? Infinity : Number(x)
    return { soft: n(m[1]!), hard: n(m[2]!) }
  } catch { return undefined }
}

/** The limit to ask for: as root the system's ceiling (fs.nr_open), else this process's hard limit. */
export function wantedFdLimit(): number {
  const own = readFdLimit(process.pid)
  if (process.getuid?.() !== 0) return Number.isFinite(own?.hard) ? own!.hard : WANTED_MAX
  let nrOpen = WANTED_MAX
  try { nrOpen = Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || WANTED_MAX } catch { /* not Linux */ }
  return Math.min(nrOpen, WANTED_MAX)
}

/**
 * `file args` started with its open-file limit raised: to `wanted` (soft and hard) where allowed,
 * else the soft limit to the hard one. Never fails to start the command because of the limit.
 */
export function withRaisedFdLimit(file: string, args: readonly string[], wanted = wantedFdLimit()): { file: string; args: string[] } {
  return { file: 'sh', args: ['-c', `ulimit -n ${wanted} 2>/dev/null || ulimit -n $(ulimit -Hn) 2>/dev/null; exec "$@"`, 'sh', file, ...args] }
}

/** Raise this process's own limit (the generator's) with prlimit; its limit afterwards. */
export function raiseOwnFdLimit(wanted = wantedFdLimit()): FdLimit | undefined {
  const before = readFdLimit(process.pid)
  const attempts = [`${wanted}:${wanted}`, ...(before && Number.isFinite(before.hard) ? [`${before.hard}:${before.hard}`] : [])]
  for (const nofile of attempts) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${nofile}`], { stdio: 'ignore', timeout: 5000 })
      break
    } catch { /* not allowed, or no prlimit: try the next, then keep what we have */ }
  }
  return readFdLimit(process.pid)
}

/** One connection-holding process's limit against the users the run asks for. */
export interface FdLimitLine {
  readonly name: string
  readonly pid: number
  readonly soft: number
  readonly hard: number
  readonly fdsPerUser: number
  /** Users its soft limit allows (FD_BASELINE kept for the process's own files). */
  readonly usersAllowed: number
  readonly usersNeeded: number
  readonly enough: boolean
  /** Child processes whose limits were summed (kube-sim's pod hosts); absent when the process holds its users itself. */
  readonly hosts?: number
}

/** Files a process holds besides its users' (listening sockets, logs, its database pool, libraries). */
const FD_BASELINE = 200

/**
 * Processes whose users live in their children when they have any, each child with its own limit:
 * kube-sim --pod-hosts (kube-sim/src/pod-hosts.ts) and a proxy with workers (FLEETHUB_PROXIES).
 */
const USERS_IN_CHILDREN = new Set(['kube-sim', 'proxy'])

/** Direct children of `pid` (Linux 3.5+), or [] when they cannot be read. */
function childPids(pid: number): number[] {
  try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) } catch { return [] }
}

const usersWithin = (soft: number, per: number): number => Number.isFinite(soft) ? Math.max(0, Math.floor((soft - FD_BASELINE) / per)) : Infinity

/**
 * Each connection-holding process's limit against `usersNeeded`; `shareOf` divides a process's
 * share where its users are split over processes that do not exist yet (the generator's children
 * with --generators: `{ generator: 4 }`).
 */
export function fdLimitLines(processes: ReadonlyArray<{ name: string; pid: number | undefined }>, usersNeeded: number, shareOf: Readonly<Record<string, number>> = {}): FdLimitLine[] {
  const out: FdLimitLine[] = []
  for (const p of processes) {
    const needed = Math.ceil(usersNeeded / Math.max(1, shareOf[p.name] ?? 1))
    const per = FDS_PER_USER[p.name]
    if (per === undefined || p.pid === undefined) continue
    const l = readFdLimit(p.pid)
    if (!l) continue
    // kube-sim with pod hosts: the users' files are spread over its children, so their limits add up
    const hosts = USERS_IN_CHILDREN.has(p.name) ? childPids(p.pid).map(readFdLimit).filter((x): x is FdLimit => x !== undefined) : []
    const usersAllowed = hosts.length > 0 ? hosts.reduce((sum, h) => sum + usersWithin(h.soft, per), 0) : usersWithin(l.soft, per)
    const shown = hosts.length > 0 ? { soft: Math.min(...hosts.map(h => h.soft)), hard: Math.min(...hosts.map(h => h.hard)), hosts: hosts.length } : { soft: l.soft, hard: l.hard }
    out.push({ name: p.name, pid: p.pid, ...shown, fdsPerUser: per, usersAllowed, usersNeeded: needed, enough: usersAllowed >= needed })
  }
  return out
}

/** The line printed at start for a limit too low for the run. */
export function fdLimitWarning(l: FdLimitLine): string {
  return `open files: ${l.name} (pid ${l.pid}${l.hosts !== undefined ? `, ${l.hosts} child processes` : ''}) may open ${l.soft}${l.hosts !== undefined ? ' each' : ''} (hard limit ${l.hard}, could not be raised further), ` +
    `which allows about ${l.usersAllowed} users at ${l.fdsPerUser} per user; this run may hold ${l.usersNeeded} at once`
}
