/**
 * kube-sim holds open files per pod (each virtual server's listening socket and the proxy's
 * connection to it), so it raises its own open-file limit when it starts, as far as the hard limit
 * allows (the hard limit too as root with CAP_SYS_RESOURCE). Node has no setrlimit: `prlimit --pid`
 * on itself does it. Issue #16: at 10,000 users kube-sim reached this machine's 20,000.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

/** Open files a pod costs kube-sim. */
export const FDS_PER_POD = 2
const WANTED_MAX = 1_048_576

function limits(): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))
    return m ? { soft: Number(m[1]), hard: Number(m[2]) } : undefined
  } catch { return undefined }
}

/** Raise the soft (and as root the hard) limit; the limit afterwards and the pods it allows, or undefined off Linux. */
export function raiseFdLimit(): { soft: number; hard: number; pods: number } | undefined {
  const before = limits()
  if (!before) return undefined
  let wanted = before.hard
  if (process.getuid?.() === 0) {
    try { wanted = Math.min(WANTED_MAX, Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || WANTED_MAX) } catch { /* keep the hard limit */ }
  }
  for (const n of [wanted, before.hard]) {
    try { execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${n}:${n}`], { stdio: 'ignore', timeout: 5000 }); break } catch { /* not allowed or no prlimit */ }
  }
  const after = limits() ?? before
  return { ...after, pods: Math.floor(after.soft / FDS_PER_POD) }
}
