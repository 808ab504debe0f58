/**
 * A fresh, migrated database for one test file, cloned from the shared template
 * (see test/setup/shared-postgres.ts). Dropped at teardown.
 */
import fs from 'node:fs/promises'
import pg from 'pg'
import { createDb, type Db } from '../../hub/src/db.js'
import { infoFile, type SharedPostgresInfo } from '../setup/shared-postgres.js'

let counter = 0

export interface TestDatabase {
  readonly url: string
  readonly db: Db
  readonly pool: pg.Pool
}

interface Teardown { teardown(fn: () => unknown): void }

export async function sharedPostgres(): Promise<SharedPostgresInfo> {
  try {
    return JSON.parse(await fs.readFile(infoFile(process.ppid), 'utf8')) as SharedPostgresInfo
  } catch {
    throw new Error('no test Postgres: run the tests through `tap` (its before script starts one), e.g. `npx tap hub/test/x.test.ts`')
  }
}

export async function createTestDatabase(t: Teardown, options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const info = await sharedPostgres()
  const name = `hub_t_${process.pid}_${++counter}`
  const admin = new pg.Client({ connectionString: info.adminUrl })
  await admin.connect()
  await admin.query(`create database ${name} template ${info.templateDb}`)
  await admin.end()
  const url = info.adminUrl.replace(/\/[^/]*$/, `/${name}`)
  const { db, pool } = createDb({ url, poolSize: options.poolSize ?? 10 })
  t.teardown(async () => {
    await db.destroy()
    const c = new pg.Client({ connectionString: info.adminUrl })
    await c.connect()
    await c.query(`drop database if exists ${name} with (force)`)
    await c.end()
  })
  return { url, db, pool }
}
