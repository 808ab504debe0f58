/** `fleethub db migrate [--down [--steps N]]`: run migrations against DATABASE_URL or the embedded database. */
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createDb, migrateDown, migrateToLatest } from './db.js'
import { createLogger } from '../../core/src/log.js'
import { attachEmbeddedPostgres } from '../../core/src/embedded-postgres.js'

const HELP = `usage: fleethub db migrate [--down] [--steps N] [--data-dir DIR]

  migrate          apply every pending migration (the hub also does this on start)
  --down           undo migrations instead (all, or --steps N)
  --data-dir DIR   the embedded database's folder when DATABASE_URL is unset (default .fleethub)
`

export async function dbMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    down: { type: 'boolean' }, steps: { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } })
  if (values.help) { process.stdout.write(HELP); return 0 }
  if (positionals[0] !== 'migrate' || positionals.length !== 1) { process.stderr.write(HELP); return 2 }
  const steps = values.steps === undefined ? undefined : Number(values.steps)
  if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) { process.stderr.write('--steps: expected a positive integer\n'); return 2 }
  const log = createLogger('warn')
  // never stop a hub's running database under it: attach to it when it is up
  const pg = env.DATABASE_URL ? undefined : await attachEmbeddedPostgres({ dataDir: path.join(path.resolve(values['data-dir'] ?? env.FLEETHUB_DATA_DIR ?? '.fleethub'), 'pgdata'), log })
  const { db } = createDb({ url: env.DATABASE_URL ?? pg!.url, poolSize: 2 })
  try {
    const names = values.down ? await migrateDown(db, steps) : await migrateToLatest(db)
    process.stdout.write(names.length === 0 ? 'nothing to do\n' : `${values.down ? 'undone' : 'applied'}: ${names.join(', ')}\n`)
    return 0
  } finally {
    await db.destroy()
    await pg?.stop()
  }
}
