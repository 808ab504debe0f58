/**
 * What `npm run bench:hub` measures, shared by the single run (api.bench.ts) and the worker-count
 * comparison (api-workers.ts): the seeded database (users named user00000..., the first `running`
 * of them with a "running" server, an admin with an API token) and the four hot API requests.
 */
import { sql } from 'kysely'
import type { Db } from '../src/db.js'
import { createToken } from '../src/tokens/token.repository.js'

export interface ApiCase {
  readonly key: 'get_user' | 'activity' | 'token_check' | 'list_ready'
  request(): { method: 'GET' | 'POST'; path: string; body?: string; headers: Record<string, string> }
}

/** Seed `users` users and `running` running servers; returns the admin's token. */
export async function seedApiBench(db: Db, users: number, running: number): Promise<string> {
  await sql`insert into users (name, last_activity) select 'user' || lpad(i::text, 5, '0'), now() - (i || ' seconds')::interval from generate_series(0, ${users - 1}) as i`.execute(db)
  await sql`insert into servers (user_id, name, state, url, started, last_activity) select id, '', 'running', 'http://127.0.0.1:9', now(), now() from users order by id limit ${running}`.execute(db)
  const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
  const token = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  await sql`analyze`.execute(db)
  return token
}

/** The hot requests, each for a random seeded user where it names one. */
export function apiCases(token: string, users: number): ApiCase[] {
  const headers = { authorization: `token ${token}` }
  const name = () => `user${String(Math.floor(Math.random() * users)).padStart(5, '0')}`
  return [
    { key: 'get_user', request: () => ({ method: 'GET', path: `/hub/api/users/${name()}`, headers }) },
    { key: 'activity', request: () => ({ method: 'POST', path: `/hub/api/users/${name()}/activity`, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ last_activity: new Date().toISOString() }) }) },
    { key: 'token_check', request: () => ({ method: 'GET', path: '/hub/api/user', headers }) },
    { key: 'list_ready', request: () => ({ method: 'GET', path: `/hub/api/users?state=ready&offset=${Math.floor(Math.random() * 40) * 50}&limit=50`, headers: { ...headers, accept: 'application/jupyterhub-pagination+json' } }) },
  ]
}
