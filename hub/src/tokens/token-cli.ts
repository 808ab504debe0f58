/**
 * `fleethub token <user>`: mint an API token straight in the database, as `jupyterhub token`
 * does, and print only the token on stdout (so `TOKEN=$(fleethub token alice)` works).
 * The database is DATABASE_URL, else the embedded one under --data-dir: when the hub is running
 * on it we connect to that server rather than start (and so stop) another on the same files.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { createDb, type Db } from '../db.js'
import { createLogger } from '../../../core/src/log.js'
import { attachEmbeddedPostgres } from '../../../core/src/embedded-postgres.js'
import { RequestAuth } from '../auth/request-auth.js'
import { expandScopes, intersectScopes, ScopeError, validateScope } from '../auth/scopes.js'
import { ensureUser, findUserByName, type User } from '../users/user.repository.js'
import { createToken } from './token.repository.js'

const HELP = `usage: fleethub token <user> [--scopes a,b] [--note TEXT] [--expires-in SECONDS] [--create] [--data-dir DIR]

Mint an API token for <user> directly in the hub's database and print it (only it) on stdout.

  --scopes a,b        the token's scopes, comma-separated (default: inherit the user's own)
  --note TEXT         shown in the user's token list (default "command-line generated")
  --expires-in S      seconds until the token expires (default: never)
  --create            create the user if it does not exist (default: unknown user is an error)
  --data-dir DIR      the embedded database's folder when DATABASE_URL is unset
                      (default $FLEETHUB_DATA_DIR, else .fleethub)

Scopes are checked against the user's default roles (user, and admin for admins).
Exit status: 0 printed a token, 1 refused (unknown user, bad scope, no database), 2 usage.
`

const MAX_NOTE = 1000
const MAX_EXPIRES_IN = 10_000_000_000

/** A refusal to report on stderr with exit status 1. */
class TokenCliError extends Error {}
/** A malformed command line: usage on stderr, exit status 2. */
class UsageError extends Error {}

export interface TokenCliOptions {
  readonly user: string
  readonly scopes?: readonly string[]
  readonly note: string
  readonly expiresIn?: number
  readonly create: boolean
  readonly dataDir: string
}

/** Parse argv; throws a usage message (exit 2) on malformed flags. Pure. */
export function parseTokenArgs(argv: string[], env: NodeJS.ProcessEnv): TokenCliOptions & { help: boolean } {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    scopes: { type: 'string' }, note: { type: 'string' }, 'expires-in': { type: 'string' }, create: { type: 'boolean' },
    'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } })
  const help = values.help === true
  if (help) return { help, user: '', note: '', create: false, dataDir: '' }
  if (positionals.length !== 1 || positionals[0] === '') throw new UsageError('expected exactly one user name')
  let expiresIn: number | undefined
  if (values['expires-in'] !== undefined) {
    expiresIn = Number(values['expires-in'])
    if (!/^\d+$/.test(values['expires-in']) || expiresIn <= 0 || expiresIn > MAX_EXPIRES_IN) throw new UsageError('--expires-in: expected a positive integer number of seconds')
  }
  const note = values.note ?? 'command-line generated'
  if (note.length > MAX_NOTE) throw new UsageError(`--note: at most ${MAX_NOTE} characters`)
  const scopes = values.scopes === undefined ? undefined : values.scopes.split(',').map(s => s.trim()).filter(s => s !== '')
  if (scopes !== undefined && scopes.length === 0) throw new UsageError('--scopes: expected at least one scope')
  return Object.freeze({
    help, user: positionals[0]!, scopes, note, expiresIn, create: values.create === true,
    dataDir: path.resolve(values['data-dir'] ?? env.FLEETHUB_DATA_DIR ?? '.fleethub'),
  })
}


/**
 * The scopes to store for `user`: `inherit` when none are asked for, else the ones asked for,
 * each known and held by the user. Throws TokenCliError naming what is refused.
 */
export function tokenScopesFor(auth: RequestAuth, user: Pick<User, 'name' | 'admin'>, scopes: readonly string[] | undefined): string[] {
  if (!scopes) return ['inherit']
  for (const s of scopes) {
    try {
      validateScope(s)
    } catch (err) {
      if (err instanceof ScopeError) throw new TokenCliError(err.message)
      throw err
    }
  }
  const owned = auth.userScopes(user)
  const { refused } = intersectScopes(expandScopes(scopes, { kind: 'user', name: user.name }, { inherit: [...owned] }), owned)
  if (refused.length > 0) throw new TokenCliError(`Not assigning requested scopes ${refused.join(',')} not held by User ${user.name}`)
  return [...scopes]
}

/** Mint the token; the database must be migrated. Returns the secret. */
export async function mintToken(db: Db, o: TokenCliOptions): Promise<string> {
  const user = o.create ? await ensureUser(db, o.user) : await findUserByName(db, o.user)
  if (!user) throw new TokenCliError(`No such user: '${o.user}' (add --create to create it)`)
  const scopes = tokenScopesFor(new RequestAuth(db), user, o.scopes)
  const { token } = await createToken(db, { kind: 'api', userId: user.id, scopes, note: o.note, expiresInSeconds: o.expiresIn })
  return token
}

async function openDatabase(o: TokenCliOptions, env: NodeJS.ProcessEnv): Promise<{ url: string; pg?: { stop(): Promise<void> } }> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL }
  const pgdata = path.join(o.dataDir, 'pgdata')
  try {
    await fs.access(path.join(pgdata, 'PG_VERSION'))
  } catch {
    throw new TokenCliError(`no database at ${pgdata}: run the hub once (fleethub start) or set DATABASE_URL`)
  }
  // logs go to stderr: stdout carries the token alone
  const pg = await attachEmbeddedPostgres({ dataDir: pgdata, log: createLogger('warn', pino.destination(2)) })
  return { url: pg.url, pg }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let o: ReturnType<typeof parseTokenArgs>
  try {
    o = parseTokenArgs(argv, env)
  } catch (err) {
    if (!(err instanceof UsageError) && !(err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw err
    process.stderr.write(`fleethub token: ${(err as Error).message}\n\n${HELP}`)
    return 2
  }
  if (o.help) { process.stdout.write(HELP); return 0 }
  let pg: { stop(): Promise<void> } | undefined
  let db: Db | undefined
  try {
    const opened = await openDatabase(o, env)
    pg = opened.pg
    db = createDb({ url: opened.url, poolSize: 1 }).db
    const token = await mintToken(db, o)
    process.stdout.write(`${token}\n`)
    return 0
  } catch (err) {
    if (err instanceof TokenCliError) {
      process.stderr.write(`fleethub token: ${err.message}\n`)
      return 1
    }
    const message = err instanceof Error ? err.message : String(err)
    const hint = /relation "\w+" does not exist/.test(message) ? ' (the database is not migrated: run `fleethub db migrate`)' : ''
    process.stderr.write(`fleethub token: ${message}${hint}\n`)
    return 1
  } finally {
    await db?.destroy()
    await pg?.stop()
  }
}
