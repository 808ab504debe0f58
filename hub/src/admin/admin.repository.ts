import { sql } from 'kysely'
import type { Db } from '../db.js'

/** How many servers are in each state but `stopped`, in one query on the partial index `servers_active_idx` (O(active), not O(users)). */
export async function countActiveServersByState(db: Db): Promise<Map<string, number>> {
  const rows = await db.selectFrom('servers').select(['state', sql<string>`count(*)`.as('n')])
    .where('state', '<>', 'stopped').groupBy('state').execute()
  return new Map(rows.map(r => [r.state, Number(r.n)]))
}
