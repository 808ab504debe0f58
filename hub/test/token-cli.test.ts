/**
 * `fleethub token` as a user runs it: the compiled CLI from dist/ (run `npm run build` first) as
 * a child process against a test database, and the printed token used on a running hub's API.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { sharedPostgres } from '../../test/helpers/db.js'
import { startTestHub } from '../../test/helpers/hub.js'
import { ensureUser } from '../src/users/user.repository.js'
import { mintToken, parseTokenArgs } from '../src/tokens/token-cli.js'

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/fleethub.js')

interface Run { code: number; stdout: string; stderr: string }

function run(args: string[], env: Record<string, string>): Promise<Run> {
  const base = { ...process.env }
  delete base.DATABASE_URL
  delete base.FLEETHUB_DATA_DIR
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, 'token', ...args], { env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })
    })
  })
}

t.test('fleethub token', async t => {
  await fs.access(CLI).catch(() => { throw new Error(`${CLI} is missing: run \`npm run build\` first`) })
  const hub = await startTestHub(t)
  const env = { DATABASE_URL: hub.databaseUrl }
  const alice = await ensureUser(hub.db, 'alice')
  const whoami = async (token: string) => {
    const res = await fetch(`${hub.publicUrl}/hub/api/user`, { headers: { authorization: `token ${token}` } })
    return { status: res.status, body: await res.json() as any }
  }
  const tokenRows = async () => hub.db.selectFrom('api_tokens').selectAll().orderBy('id').execute()

  await t.test('--help', async t => {
    const r = await run(['--help'], env)
    t.equal(r.code, 0)
    t.match(r.stdout, /^usage: fleethub token <user>/)
    t.match(r.stdout, /--scopes/)
    t.match(r.stdout, /--create/)
  })

  await t.test('a token for an existing user, printed alone, inheriting the user\'s scopes', async t => {
    const r = await run(['alice'], env)
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^[0-9a-f]{32}\n$/, 'stdout is the token and nothing else')
    const who = await whoami(r.stdout.trim())
    t.equal(who.status, 200)
    t.equal(who.body.name, 'alice')
    t.ok(who.body.scopes.includes('tokens!user=alice') && who.body.scopes.includes('servers!user=alice'), 'the user\'s own scopes')
    const row = (await tokenRows()).at(-1)!
    t.match(row, { user_id: alice.id, kind: 'api', note: 'command-line generated', expires_at: null })
    t.same(row.scopes, ['inherit'])
  })

  await t.test('--scopes, --note, --expires-in', async t => {
    const before = Date.now()
    const r = await run(['alice', '--scopes', 'read:users:name!user=alice,read:servers!user', '--note', 'for a script', '--expires-in', '600'], env)
    t.equal(r.code, 0, r.stderr)
    const who = await whoami(r.stdout.trim())
    t.same(who.body.scopes, ['read:servers!user=alice', 'read:users:name!user=alice'])
    const list = await fetch(`${hub.publicUrl}/hub/api/users/alice/tokens`, { headers: { authorization: `token ${r.stdout.trim()}` } })
    t.equal(list.status, 403, 'it holds only what it was given')
    await list.body?.cancel()
    const row = (await tokenRows()).at(-1)!
    t.equal(row.note, 'for a script')
    t.same(row.scopes, ['read:users:name!user=alice', 'read:servers!user'])
    const expires = row.expires_at!.getTime()
    t.ok(expires >= before + 599_000 && expires <= Date.now() + 601_000, 'expires in 600 s')
  })

  await t.test('--create makes the user; without it an unknown user is refused', async t => {
    const refused = await run(['newbie'], env)
    t.equal(refused.code, 1)
    t.equal(refused.stdout, '')
    t.equal(refused.stderr, 'fleethub token: No such user: \'newbie\' (add --create to create it)\n')
    t.notOk(await hub.db.selectFrom('users').select('id').where('name', '=', 'newbie').executeTakeFirst(), 'no user was created')
    const made = await run(['newbie', '--create'], env)
    t.equal(made.code, 0, made.stderr)
    t.equal((await whoami(made.stdout.trim())).body.name, 'newbie')
    const again = await run(['newbie', '--create'], env)
    t.equal(again.code, 0, '--create on an existing user just mints')
  })

  await t.test('refusals: exit 1, a clear message, nothing written', async t => {
    const before = (await tokenRows()).length
    const r = await run(['alice', '--scopes', 'admin:users'], env)
    t.equal(r.code, 1)
    t.equal(r.stdout, '', 'nothing on stdout')
    t.equal(r.stderr, 'fleethub token: Not assigning requested scopes admin:auth_state,admin:users,delete:users,list:users,read:roles:users,read:users,read:users:activity,read:users:groups,read:users:name,users,users:activity not held by User alice\n')
    // the rest of the table in-process (each CLI run costs seconds on a loaded machine)
    const cases: Array<[string, string[], string]> = [
      ['unknown scope', ['frobnicate'], 'Unknown scope: frobnicate'],
      ['bad filter', ['read:users!nobody=x'], 'Bad scope filter: read:users!nobody=x'],
      ['another user\'s scope', ['read:servers!user=bob'], 'Not assigning requested scopes read:servers!user=bob,read:users:name!user=bob not held by User alice'],
      ['a group\'s scope', ['read:users!group=g1'], 'Not assigning requested scopes read:users!group=g1,'],
    ]
    for (const [what, scopes, message] of cases) {
      const err = await mintToken(hub.db, { user: 'alice', scopes, note: 'n', create: false, dataDir: '' }).then(() => undefined, (e: Error) => e)
      t.ok(err?.message.startsWith(message), `${what}: ${err?.message}`)
    }
    t.equal((await tokenRows()).length, before, 'no token was stored')
  })

  await t.test('usage errors: exit 2 with the usage', async t => {
    const results = await Promise.all([[], ['alice', '--bogus']].map(args => run(args, env)))
    for (const r of results) {
      t.equal(r.code, 2)
      t.match(r.stderr, /usage: fleethub token/)
      t.equal(r.stdout, '')
    }
    const bad: Array<[string[], RegExp]> = [
      [[], /exactly one user/], [['a', 'b'], /exactly one user/], [['alice', '--expires-in', 'soon'], /--expires-in/],
      [['alice', '--expires-in', '0'], /--expires-in/], [['alice', '--expires-in', '1.5'], /--expires-in/],
      [['alice', '--expires-in', '99999999999'], /--expires-in/], [['alice', '--scopes', ','], /--scopes/],
      [['alice', '--note', 'x'.repeat(1001)], /--note/], [['alice', '--bogus'], /bogus/],
    ]
    for (const [args, message] of bad) t.throws(() => parseTokenArgs(args, {}), { message }, JSON.stringify(args).slice(0, 60))
    t.match(parseTokenArgs(['bob', '--scopes', ' read:users!user , servers!user', '--expires-in', '60', '--create'], { FLEETHUB_DATA_DIR: '/srv/hub' }),
      { user: 'bob', scopes: ['read:users!user', 'servers!user'], expiresIn: 60, create: true, note: 'command-line generated', dataDir: '/srv/hub' })
    t.equal(parseTokenArgs(['bob'], {}).dataDir, path.resolve('.fleethub'), 'the default data dir')
  })

  await t.test('no DATABASE_URL and no embedded database: exit 1, nothing created', async t => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-token-cli-'))
    t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
    const r = await run(['alice', '--data-dir', dir], {})
    t.equal(r.code, 1)
    t.equal(r.stderr, `fleethub token: no database at ${path.join(dir, 'pgdata')}: run the hub once (fleethub start) or set DATABASE_URL\n`)
    t.same(await fs.readdir(dir), [], 'no cluster was initialised')
  })

  await t.test('the embedded database already running (the hub\'s): used as it is, never stopped', async t => {
    // the test suite's shared server is an embedded cluster like the hub's: --data-dir names its folder
    const shared = await sharedPostgres()
    const pidFile = await fs.readFile(path.join(shared.dataRoot, 'pgdata', 'postmaster.pid'), 'utf8')
    const r = await run(['alice', '--data-dir', shared.dataRoot], {})
    // its default database is not migrated: reaching that error proves the CLI connected to it
    t.equal(r.code, 1)
    t.match(r.stderr, /^fleethub token: relation "users" does not exist \(the database is not migrated: run `fleethub db migrate`\)\n$/)
    t.equal(r.stdout, '')
    t.doesNotThrow(() => process.kill(shared.pid, 0), 'the running server was left running')
    t.equal(await fs.readFile(path.join(shared.dataRoot, 'pgdata', 'postmaster.pid'), 'utf8'), pidFile, 'and was not restarted')
  })

  await t.test('an unreachable database: exit 1 with the cause', async t => {
    const r = await run(['alice'], { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none' })
    t.equal(r.code, 1)
    t.match(r.stderr, /^fleethub token: .*ECONNREFUSED/)
    t.equal(r.stdout, '')
  })
})
