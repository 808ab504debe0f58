import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import { startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { migrateToLatest } from '../../hub/src/db.js'
import { createLogger } from '../../core/src/log.js'
import { dataRoot, infoFile, TEMPLATE_DB, type SharedPostgresInfo } from './shared-postgres.js'

const log = createLogger('warn')

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

// Leftovers of a tap run that was killed: its runner is gone, so stop its server and remove it.
async function removeStaleRuns(): Promise<void> {
  for (const name of await fs.readdir(os.tmpdir())) {
    const m = /^fleethub-test-(\d+)\.json$/.exec(name)
    if (!m || alive(Number(m[1]))) continue
    const file = path.join(os.tmpdir(), name)
    const info = JSON.parse(await fs.readFile(file, 'utf8').catch(() => '{}')) as Partial<SharedPostgresInfo>
    if (info.pid && alive(info.pid)) process.kill(info.pid, 'SIGINT')
    if (info.dataRoot) await fs.rm(info.dataRoot, { recursive: true, force: true }).catch(() => undefined)
    await fs.rm(file, { force: true })
  }
}

async function main(): Promise<void> {
  await removeStaleRuns()
  const runner = process.ppid
  const root = dataRoot(runner)
  await fs.rm(root, { recursive: true, force: true })
  // Throwaway cluster: durability settings off, it only has to be correct, not crash-safe.
  const pgServer = await startEmbeddedPostgres({
    dataDir: path.join(root, 'pgdata'), detached: true, log,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '500' },
  })
  const admin = new pg.Client({ connectionString: pgServer.url })
  await admin.connect()
  await admin.query(`create database ${TEMPLATE_DB}`)
  await admin.end()
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgServer.url.replace(/\/[^/]*$/, `/${TEMPLATE_DB}`), max: 2 }) }) })
  await migrateToLatest(db)
  await db.destroy()
  const info: SharedPostgresInfo = { adminUrl: pgServer.url, templateDb: TEMPLATE_DB, pid: pgServer.pid, dataRoot: root }
  await fs.writeFile(infoFile(runner), JSON.stringify(info))
}

main().catch(err => {
  process.stderr.write(`test setup failed: ${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
