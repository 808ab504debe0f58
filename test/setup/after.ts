import fs from 'node:fs/promises'
import { infoFile, type SharedPostgresInfo } from './shared-postgres.js'

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function main(): Promise<void> {
  const file = infoFile(process.ppid)
  let info: SharedPostgresInfo
  try {
    info = JSON.parse(await fs.readFile(file, 'utf8')) as SharedPostgresInfo
  } catch { return }
  if (alive(info.pid)) {
    process.kill(info.pid, 'SIGINT')
    for (let i = 0; i < 200 && alive(info.pid); i++) await new Promise(r => setTimeout(r, 50))
  }
  await fs.rm(info.dataRoot, { recursive: true, force: true })
  await fs.rm(file, { force: true })
}

main().catch(err => {
  process.stderr.write(`test teardown failed: ${String(err)}\n`)
})
