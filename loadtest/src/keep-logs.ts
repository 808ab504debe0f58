/**
 * A run's process logs (hub.log, kube-sim.log: the target writes them in the run's work directory,
 * which is deleted at the end) kept next to the report when a step was unhealthy or the run failed,
 * gzipped, the last MAX_LOG_BYTES of each. Round 9 of the journal could not say why 2,327 users
 * failed at 10,000: the hub's log had gone with the work directory.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { gzipSync } from 'node:zlib'

/** The tail of a log kept, bytes (before compression). */
export const MAX_LOG_BYTES = 32 * 1024 * 1024

/** Copy every `*.log` directly in `workDir` to `reportDir/logs/<name>.gz`; the names kept, relative to `reportDir`. */
export async function keepLogs(workDir: string, reportDir: string, maxBytes = MAX_LOG_BYTES): Promise<string[]> {
  let names: string[]
  try { names = (await fs.readdir(workDir)).filter(n => n.endsWith('.log')).sort() } catch { return [] }
  const kept: string[] = []
  for (const name of names) {
    const file = path.join(workDir, name)
    let text: Buffer
    try {
      const fh = await fs.open(file, 'r')
      try {
        const { size } = await fh.stat()
        const from = Math.max(0, size - maxBytes)
        text = Buffer.alloc(size - from)
        await fh.read(text, 0, text.length, from)
      } finally { await fh.close() }
    } catch { continue }
    if (text.length === 0) continue
    await fs.mkdir(path.join(reportDir, 'logs'), { recursive: true })
    const out = path.join('logs', `${name}.gz`)
    await fs.writeFile(path.join(reportDir, out), gzipSync(text))
    kept.push(out)
  }
  return kept
}
