import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
// The routing table in Postgres (issue #15): proxies in route-store mode load `proxy_routes` and
// follow the `fleethub_routes` notifications; the table follows `servers` by trigger, so a server
// is running (with a url) exactly when its route exists, whichever statement or hub changed it.
//
// The trigger starts disabled and costs the REST mode nothing: a NOTIFY makes its transaction's
// commit take Postgres's one notify lock, so commits that notify are serialised. The first hub
// with `--proxy-routes db` or proxy with `--routes-from-db` turns it on for good
// (fleethub_enable_route_store: enable, then fill the table, under one lock on `servers`).
//
// Versions: every route change takes the next number of the sequence `proxy_routes_version`,
// stores it on the route and sends it in its notification. A proxy applies a change only when it
// is newer than the route it has (so a change it already loaded, or sees twice, does nothing) and
// watches the numbers for holes: one that stays open for a couple of seconds, a sequence that
// polls ahead of everything it was told, or a lost listening connection means it missed
// something, and it reloads the table.
//
// The trigger is a deferred constraint trigger: it runs at commit, so a number is taken moments
// before the notification goes out and a hole closes within milliseconds. A sequence takes no
// lock: a one-row counter bumped in the trigger held its row lock through every commit's WAL
// flush, which serialised the commits of all route changes and cost 45% of spawns/s (bench in
// hub/bench/route-trigger.bench.ts).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('proxy_routes')
    // the proxy's route key, unescaped: /user/alice or /user/alice/<server name>
    .addColumn('path', 'text', c => c.primaryKey())
    // no foreign key: the trigger removes a deleted server's route (a cascade would lock the row
    // before the version row, see above)
    .addColumn('server_id', 'bigint', c => c.notNull().unique())
    .addColumn('user_id', 'bigint', c => c.notNull())
    .addColumn('target', 'text', c => c.notNull())
    // what GET /api/routes shows (without last_activity), as the REST mode's hub writes it
    .addColumn('data', 'jsonb', c => c.notNull())
    .addColumn('version', 'bigint', c => c.notNull())
    .execute()
  await sql`create sequence proxy_routes_version`.execute(db)
  // The route each running server should have: the one definition the trigger and the reconcile share.
  await sql`create view proxy_routes_wanted as
    select case when s.name = '' then '/user/' || u.name else '/user/' || u.name || '/' || s.name end as path,
           s.id as server_id, s.user_id, s.url as target,
           jsonb_build_object('user', u.name, 'server_name', s.name, 'target', s.url, 'jupyterhub', true) as data
      from servers s join users u on u.id = s.user_id where s.state = 'running' and s.url is not null`.execute(db)

  await sql`create function fleethub_sync_server_route() returns trigger language plpgsql as $$
declare
  sid bigint := case when tg_op = 'DELETE' then old.id else new.id end;
  have_path text;
  have_target text;
  want_path text;
  want_target text;
  want_user bigint;
  want_data jsonb;
  v bigint;
begin
  -- the row as this transaction leaves it (several events of one transaction meet the same answer)
  select path, target, user_id, data into want_path, want_target, want_user, want_data
    from proxy_routes_wanted where server_id = sid;
  select path, target into have_path, have_target from proxy_routes where server_id = sid;
  if have_path is not distinct from want_path and have_target is not distinct from want_target then
    return null;
  end if;
  if have_path is not null then
    v := nextval('proxy_routes_version');
    delete from proxy_routes where server_id = sid;
    perform pg_notify('fleethub_routes', json_build_object('v', v, 'op', 'del', 'path', have_path)::text);
  end if;
  if want_path is not null then
    v := nextval('proxy_routes_version');
    -- a route at the same path (a user renamed onto a freed name) is taken over
    delete from proxy_routes where path = want_path;
    insert into proxy_routes (path, server_id, user_id, target, data, version)
      values (want_path, sid, want_user, want_target, want_data, v);
    perform pg_notify('fleethub_routes', json_build_object('v', v, 'op', 'set', 'path', want_path,
      'server', sid::text, 'user', want_user::text, 'data', want_data)::text);
  end if;
  return null;
end $$`.execute(db)
  await sql`create constraint trigger servers_route_sync
    after insert or update of state, url or delete on servers
    deferrable initially deferred for each row execute function fleethub_sync_server_route()`.execute(db)
  await sql`alter table servers disable trigger servers_route_sync`.execute(db)
  // A renamed user's routes move: touching `url` fires the servers trigger, which recomputes the path.
  await sql`create function fleethub_sync_user_routes() returns trigger language plpgsql as $$
begin
  update servers set url = url where user_id = new.id and state = 'running';
  return null;
end $$`.execute(db)
  await sql`create trigger users_route_sync after update of name on users
    for each row when (old.name is distinct from new.name) execute function fleethub_sync_user_routes()`.execute(db)

  // Every proxy's activity, one statement per flush: the newer of what is stored and what was seen.
  await sql`create function fleethub_record_route_activity(server_ids bigint[], seen timestamptz[]) returns integer
    language sql as $$
  with v as (select * from unnest(server_ids, seen) as v(id, t)),
  s as (update servers s set last_activity = v.t from v
        where s.id = v.id and (s.last_activity is null or s.last_activity < v.t) returning s.user_id, v.t),
  u as (update users u set last_activity = m.t from (select user_id, max(t) as t from s group by user_id) m
        where u.id = m.user_id and (u.last_activity is null or u.last_activity < m.t) returning 1)
  select count(*)::integer from s
$$`.execute(db)

  // The safety net (and the backfill of servers running before this migration): make the table
  // equal to the running servers. Returns how many routes it changed; any change bumps the version
  // once and tells the proxies to reload.
  await sql`create function fleethub_reconcile_routes() returns integer language plpgsql as $$
declare
  changed integer := 0;
  n integer;
  v bigint;
begin
  -- no route changes meanwhile (the trigger's writes wait; its reads of servers do not block this)
  lock table proxy_routes in share row exclusive mode;
  v := nextval('proxy_routes_version');
  delete from proxy_routes r where not exists (
    select 1 from proxy_routes_wanted w where w.path = r.path and w.server_id = r.server_id and w.target = r.target);
  get diagnostics n = row_count;
  changed := changed + n;
  insert into proxy_routes (path, server_id, user_id, target, data, version)
    select path, server_id, user_id, target, data, v from proxy_routes_wanted w
      where not exists (select 1 from proxy_routes r where r.server_id = w.server_id)
    on conflict do nothing;
  get diagnostics n = row_count;
  changed := changed + n;
  -- told either way: a proxy counts every number it is given, and would otherwise see a hole here
  perform pg_notify('fleethub_routes', json_build_object('v', v, 'op', case when changed > 0 then 'reload' else 'none' end)::text);
  return changed;
end $$`.execute(db)
  // Idempotent; true when this call turned the route store on. The ALTER's lock on `servers` is
  // held to the end of the transaction, so no server changes while the table is filled.
  await sql`create function fleethub_enable_route_store() returns boolean language plpgsql as $$
begin
  if exists (select 1 from pg_trigger where tgname = 'servers_route_sync' and tgrelid = 'servers'::regclass and tgenabled = 'D') then
    alter table servers enable trigger servers_route_sync;
    perform fleethub_reconcile_routes();
    return true;
  end if;
  return false;
end $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger users_route_sync on users`.execute(db)
  await sql`drop trigger servers_route_sync on servers`.execute(db)
  await sql`drop function fleethub_enable_route_store()`.execute(db)
  await sql`drop function fleethub_reconcile_routes()`.execute(db)
  await sql`drop function fleethub_record_route_activity(bigint[], timestamptz[])`.execute(db)
  await sql`drop function fleethub_sync_user_routes()`.execute(db)
  await sql`drop function fleethub_sync_server_route()`.execute(db)
  await sql`drop view proxy_routes_wanted`.execute(db)
  await sql`drop sequence proxy_routes_version`.execute(db)
  await db.schema.dropTable('proxy_routes').execute()
}
