/**
 * The migrations, listed explicitly (kysely's static provider): explicit beats a directory scan,
 * and works the same from `dist/` and under the test loader. Names sort in apply order.
 */
import type { Migration } from 'kysely'
import * as m0001 from './0001_create_users.js'
import * as m0002 from './0002_create_servers.js'
import * as m0003 from './0003_create_sessions.js'
import * as m0004 from './0004_create_api_tokens.js'
import * as m0005 from './0005_create_groups.js'
import * as m0006 from './0006_create_cull_events.js'
import * as m0007 from './0007_index_oauth_clients_server.js'
import * as m0008 from './0008_add_user_passwords.js'
import * as m0009 from './0009_create_spawn_queue.js'
import * as m0010 from './0010_create_proxy_routes.js'
import * as m0011 from './0011_index_cascading_foreign_keys.js'

export const migrations: Record<string, Migration> = {
  '0001_create_users': m0001,
  '0002_create_servers': m0002,
  '0003_create_sessions': m0003,
  '0004_create_api_tokens': m0004,
  '0005_create_groups': m0005,
  '0006_create_cull_events': m0006,
  '0007_index_oauth_clients_server': m0007,
  '0008_add_user_passwords': m0008,
  '0009_create_spawn_queue': m0009,
  '0010_create_proxy_routes': m0010,
  '0011_index_cascading_foreign_keys': m0011,
}
