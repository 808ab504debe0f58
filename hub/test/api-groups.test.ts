/**
 * /hub/api/groups over real HTTP against a whole hub: models, pagination (envelope, headers,
 * next.url from the request's Host), every error status and message, scope denial, atomic writes.
 */
import t from 'tap'
import { startTestHub } from '../../test/helpers/hub.js'
import { createToken } from '../src/tokens/token.repository.js'
import { ensureUser } from '../src/users/user.repository.js'

interface Reply { status: number; body: any; headers: Headers }

const PAGED = { accept: 'application/jupyterhub-pagination+json' }

t.test('groups API', async t => {
  const hub = await startTestHub(t, { args: ['--admin-users', 'admin'] })
  const call = (base: string) => async (token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
    const res = await fetch(`${base}/hub/api${path}`, {
      method, headers: { ...(token ? { authorization: `token ${token}` } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers }
  }
  const api = call(hub.publicUrl)

  const admin = await ensureUser(hub.db, 'admin', { admin: true })
  const alice = await ensureUser(hub.db, 'alice')
  await ensureUser(hub.db, 'carol')
  await ensureUser(hub.db, 'dave')
  const adminTok = (await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  const aliceTok = (await createToken(hub.db, { kind: 'api', userId: alice.id, scopes: ['inherit'] })).token
  // a service-like scoped grant on a user: what a course TA might get through a config role
  const listOnly = (await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['list:groups'] })).token
  const g1Only = (await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['groups!group=g1', 'list:groups!group=g1'] })).token

  await t.test('create one, read it, 409 on the second try', async t => {
    const r = await api(adminTok, 'POST', '/groups/g1')
    t.equal(r.status, 201)
    t.same(r.body, { kind: 'group', name: 'g1', users: [], roles: [], properties: {} })
    t.equal((await api(adminTok, 'GET', '/groups/g1')).body.name, 'g1')
    const again = await api(adminTok, 'POST', '/groups/g1')
    t.equal(again.status, 409)
    t.same(again.body, { status: 409, message: 'Group g1 already exists', code: 'HUB_GROUP_EXISTS' })
    const g0 = await api(adminTok, 'POST', '/groups/g0', { users: ['alice'] })
    t.equal(g0.status, 201)
    t.same(g0.body.users, ['alice'])
  })

  await t.test('create many with members; 409 only when all exist', async t => {
    const r = await api(adminTok, 'POST', '/groups', { groups: ['g2', 'g3'], users: ['dave'] })
    t.equal(r.status, 201)
    t.same(r.body, [
      { kind: 'group', name: 'g2', users: ['dave'], roles: [], properties: {} },
      { kind: 'group', name: 'g3', users: ['dave'], roles: [], properties: {} },
    ])
    const some = await api(adminTok, 'POST', '/groups', { groups: ['g3', 'g4'] })
    t.equal(some.status, 201)
    t.same(some.body.map((g: any) => g.name), ['g4'], 'only the new one')
    const all = await api(adminTok, 'POST', '/groups', { groups: ['g3', 'g4'] })
    t.equal(all.status, 409)
    t.equal(all.body.message, 'All 2 groups already exist')
  })

  await t.test('membership: add, idempotent add, remove; seen in the user model', async t => {
    const add = await api(adminTok, 'POST', '/groups/g1/users', { users: ['alice', 'carol'] })
    t.equal(add.status, 200)
    t.same(add.body.users, ['alice', 'carol'])
    t.same((await api(adminTok, 'POST', '/groups/g1/users', { users: ['alice'] })).body.users, ['alice', 'carol'], 'adding twice is a no-op')
    const who = await api(aliceTok, 'GET', '/user')
    t.same(who.body.groups, ['g0', 'g1'], 'alice sees her groups at once')
    const del = await api(adminTok, 'DELETE', '/groups/g1/users', { users: ['carol'] })
    t.equal(del.status, 200)
    t.same(del.body, { kind: 'group', name: 'g1', users: ['alice'], roles: [], properties: {} })
    t.same((await api(adminTok, 'DELETE', '/groups/g1/users', { users: ['carol'] })).body.users, ['alice'], 'removing a non-member is a no-op')
  })

  await t.test('properties (5.x): a JSON dict replaces the stored one', async t => {
    const r = await api(adminTok, 'PUT', '/groups/g1/properties', { profile: 'gpu', quota: { cpu: 2 } })
    t.equal(r.status, 200)
    t.same(r.body.properties, { profile: 'gpu', quota: { cpu: 2 } })
    t.same((await api(adminTok, 'GET', '/groups/g1')).body.properties, { profile: 'gpu', quota: { cpu: 2 } })
    const row = await hub.db.selectFrom('groups').select('properties').where('name', '=', 'g1').executeTakeFirstOrThrow()
    t.same(row.properties, { profile: 'gpu', quota: { cpu: 2 } }, 'stored in groups.properties')
    t.same((await api(adminTok, 'PUT', '/groups/g1/properties', {})).body.properties, {}, 'replaced, not merged')
  })

  const errors: Array<[string, string, string, unknown, number, string, string?]> = [
    ['unknown group', 'GET', '/groups/nosuchgroup', undefined, 404, 'No such group: nosuchgroup', 'HUB_GROUP_NOT_FOUND'],
    ['delete unknown group', 'DELETE', '/groups/nosuchgroup', undefined, 404, 'No such group: nosuchgroup'],
    ['add to unknown group', 'POST', '/groups/nosuchgroup/users', { users: ['alice'] }, 404, 'No such group: nosuchgroup'],
    ['properties of unknown group', 'PUT', '/groups/nosuchgroup/properties', {}, 404, 'No such group: nosuchgroup'],
    ['add unknown user', 'POST', '/groups/g1/users', { users: ['alice', 'nosuchuser'] }, 400, 'No such user: nosuchuser', 'HUB_USER_NOT_FOUND'],
    ['remove unknown user', 'DELETE', '/groups/g1/users', { users: ['nosuchuser'] }, 400, 'No such user: nosuchuser'],
    ['wrong key', 'POST', '/groups/g1/users', { users: ['alice'], nope: 1 }, 400, 'Invalid JSON keys: nope', 'HUB_BAD_JSON_KEYS'],
    ['no users key', 'POST', '/groups/g1/users', {}, 400, 'Must specify users to add'],
    ['no users key (delete)', 'DELETE', '/groups/g1/users', {}, 400, 'Must specify users to delete'],
    ['users not a list', 'POST', '/groups/g1/users', { users: 'alice' }, 400, 'users must be a list of strings'],
    ['list body', 'POST', '/groups/g1/users', ['alice'], 400, 'Body must be a JSON dict or empty'],
    ['invalid JSON', 'POST', '/groups/g1/users', '{"users": [', 400, 'Invalid JSON in body of request', 'HUB_BAD_JSON'],
    ['create with unknown user', 'POST', '/groups/g9', { users: ['nosuchuser'] }, 400, 'No such user: nosuchuser'],
    ['create with wrong key', 'POST', '/groups/g9', { members: [] }, 400, 'Invalid JSON keys: members'],
    ['create with a name over 255', 'POST', `/groups/${'x'.repeat(256)}`, undefined, 400, 'Invalid group name', 'HUB_BAD_GROUP_NAME'],
    ['create with a / in the name', 'POST', '/groups/a%2Fb', undefined, 400, 'Invalid group name'],
    ['bulk with no groups', 'POST', '/groups', { groups: [] }, 400, 'Must specify at least one group to create', 'HUB_NO_GROUPS'],
    ['bulk with no body', 'POST', '/groups', undefined, 400, 'Must specify at least one group to create'],
    ['bulk with a bad name', 'POST', '/groups', { groups: ['ok', 'a/b'] }, 400, 'Invalid group name'],
    ['bulk with unknown user', 'POST', '/groups', { groups: ['g8'], users: ['nosuchuser'] }, 400, 'No such user: nosuchuser'],
    ['bulk with wrong key', 'POST', '/groups', { groups: ['g8'], nope: true }, 400, 'Invalid JSON keys: nope'],
    ['properties not a dict', 'PUT', '/groups/g1/properties', [1], 400, 'properties must be a JSON dict'],
    ['properties a string', 'PUT', '/groups/g1/properties', '"x"', 400, 'properties must be a JSON dict'],
    ['bad offset', 'GET', '/groups?offset=-1', undefined, 400, 'offset must be a non-negative integer', 'HUB_BAD_PAGINATION'],
    ['bad limit', 'GET', '/groups?limit=ten', undefined, 400, 'limit must be a non-negative integer'],
  ]
  await t.test('every error, and nothing half-written', async t => {
    const snapshot = async () => JSON.stringify(await hub.db.selectFrom('groups').leftJoin('group_members', 'group_members.group_id', 'groups.id')
      .select(['groups.name', 'groups.properties', 'group_members.user_id']).orderBy('groups.name').orderBy('group_members.user_id').execute())
    const before = await snapshot()
    for (const [what, method, path, body, status, message, code] of errors) {
      const r = await api(adminTok, method, path, body)
      t.equal(r.status, status, `${what}: status`)
      t.equal(r.body?.status, status, `${what}: body status`)
      t.ok(String(r.body?.message).startsWith(message), `${what}: message '${r.body?.message}'`)
      if (code) t.equal(r.body.code, code, `${what}: code`)
    }
    t.equal(await snapshot(), before, 'no group or membership changed')
  })

  await t.test('list: bare list without the pagination type; offset/limit still apply', async t => {
    const r = await api(adminTok, 'GET', '/groups')
    t.equal(r.status, 200)
    t.match(r.headers.get('content-type'), /^application\/json/)
    t.same(r.body.map((g: any) => g.name), ['g1', 'g0', 'g2', 'g3', 'g4'], 'creation order')
    t.same(r.body[0], { kind: 'group', name: 'g1', users: ['alice'], roles: [], properties: {} })
    t.same((await api(adminTok, 'GET', '/groups?offset=1&limit=2')).body.map((g: any) => g.name), ['g0', 'g2'])
  })

  await t.test('list: the envelope, next.url absolute from the request\'s Host', async t => {
    const first = await api(adminTok, 'GET', '/groups?limit=2', undefined, PAGED)
    t.equal(first.status, 200)
    t.same(first.body.items.map((g: any) => g.name), ['g1', 'g0'])
    t.same(first.body._pagination, {
      offset: 0, limit: 2, total: 5,
      next: { offset: 2, limit: 2, url: `${hub.publicUrl}/hub/api/groups?limit=2&offset=2` },
    })
    const next = await api(adminTok, 'GET', new URL(first.body._pagination.next.url).pathname.slice('/hub/api'.length) + new URL(first.body._pagination.next.url).search, undefined, PAGED)
    t.same(next.body.items.map((g: any) => g.name), ['g2', 'g3'])
    const last = await api(adminTok, 'GET', '/groups?offset=4&limit=2', undefined, PAGED)
    t.same(last.body._pagination, { offset: 4, limit: 2, total: 5, next: null })
    t.same(last.body.items.map((g: any) => g.name), ['g4'])
    const beyond = await api(adminTok, 'GET', '/groups?offset=50', undefined, PAGED)
    t.same(beyond.body, { items: [], _pagination: { offset: 50, limit: 50, total: 5, next: null } })
    const capped = await api(adminTok, 'GET', '/groups?limit=100000', undefined, { accept: 'application/json, application/jupyterhub-pagination+json;q=0.9' })
    t.equal(capped.body._pagination.limit, 200, 'limit is capped at 200; the type is found in a list with parameters')

    // straight at the hub (another Host): next.url follows the request, not a configured URL
    const direct = await call(hub.hubUrl)(adminTok, 'GET', '/groups?limit=1', undefined, { ...PAGED, 'x-forwarded-proto': 'https' })
    t.equal(direct.body._pagination.next.url, `${hub.hubUrl.replace('http:', 'https:')}/hub/api/groups?limit=1&offset=1`)
  })

  await t.test('scopes: list:groups alone shows names; filtered scopes see their group only', async t => {
    const names = await api(listOnly, 'GET', '/groups')
    t.equal(names.status, 200)
    t.same(names.body[0], { kind: 'group', name: 'g1' }, 'no read:groups: name only')
    t.equal((await api(listOnly, 'GET', '/groups/g1')).status, 403, 'read:groups is needed to read one')

    const filtered = await api(g1Only, 'GET', '/groups', undefined, PAGED)
    t.same(filtered.body.items.map((g: any) => g.name), ['g1'])
    t.equal(filtered.body._pagination.total, 1, 'the total counts what the caller may see')
    t.equal((await api(g1Only, 'GET', '/groups/g1')).status, 200)
    t.equal((await api(g1Only, 'POST', '/groups/g1/users', { users: ['dave'] })).status, 200, 'groups!group=g1 edits g1')
    const other = await api(g1Only, 'POST', '/groups/g2/users', { users: ['alice'] })
    t.same(other.body, { status: 404, message: 'No access to resources or resources not found', code: 'HUB_NO_ACCESS' }, 'but not g2')
    t.equal((await api(g1Only, 'DELETE', '/groups/g1')).status, 403, 'nor delete')

    const denied: Array<[string, string | undefined, string, string, unknown, number, string]> = [
      ['user lists', aliceTok, 'GET', '/groups', undefined, 403, 'Action is not authorized with current scopes; requires any of [list:groups]'],
      ['user reads', aliceTok, 'GET', '/groups/g1', undefined, 403, 'Action is not authorized with current scopes; requires any of [read:groups]'],
      ['user creates', aliceTok, 'POST', '/groups/mine', undefined, 403, 'Action is not authorized with current scopes; requires any of [admin:groups]'],
      ['user bulk-creates', aliceTok, 'POST', '/groups', { groups: ['mine'] }, 403, 'Action is not authorized with current scopes; requires any of [admin:groups]'],
      ['user deletes', aliceTok, 'DELETE', '/groups/g1', undefined, 403, 'Action is not authorized with current scopes; requires any of [delete:groups]'],
      ['user joins', aliceTok, 'POST', '/groups/g2/users', { users: ['alice'] }, 403, 'Action is not authorized with current scopes; requires any of [groups]'],
      ['user sets properties', aliceTok, 'PUT', '/groups/g1/properties', {}, 403, 'Action is not authorized with current scopes; requires any of [groups]'],
      ['no token', undefined, 'GET', '/groups', undefined, 403, 'Forbidden'],
    ]
    for (const [what, token, method, path, body, status, message] of denied) {
      const r = await api(token, method, path, body)
      t.equal(r.status, status, `${what}: status`)
      t.equal(r.body.message, message, `${what}: message`)
    }
    t.equal((await api(adminTok, 'GET', '/groups/mine')).status, 404, 'nothing was created')
  })

  await t.test('concurrent writes: one creator wins, parallel adds all land', async t => {
    const creates = await Promise.all(Array.from({ length: 6 }, () => api(adminTok, 'POST', '/groups/race', { users: ['alice'] })))
    t.same(creates.map(r => r.status).sort(), [201, 409, 409, 409, 409, 409], 'exactly one 201')
    for (const r of creates.filter(r => r.status === 409)) t.equal(r.body.message, 'Group race already exists')
    const names = Array.from({ length: 8 }, (_, i) => `racer${i}`)
    for (const n of names) await ensureUser(hub.db, n)
    const adds = await Promise.all(names.map(n => api(adminTok, 'POST', '/groups/race/users', { users: [n, 'alice'] })))
    t.same(adds.map(r => r.status), names.map(() => 200))
    t.same((await api(adminTok, 'GET', '/groups/race')).body.users, ['alice', ...names].sort(), 'every member, once')
    t.equal((await api(adminTok, 'DELETE', '/groups/race')).status, 204)
  })

  await t.test('a !group= scope follows membership at once, and deleting a group ends it', async t => {
    const bob = await ensureUser(hub.db, 'bob')
    await createToken(hub.db, { kind: 'api', userId: bob.id, scopes: ['inherit'], note: 'bob\'s' })
    // a course TA's grant: the tokens of the members of g4
    const ta = (await createToken(hub.db, { kind: 'api', userId: admin.id, scopes: ['read:tokens!group=g4'] })).token
    const noAccess = { status: 404, message: 'No access to resources or resources not found', code: 'HUB_NO_ACCESS' }
    t.same((await api(ta, 'GET', '/users/bob/tokens')).body, noAccess, 'bob is not in g4 yet')
    t.equal((await api(adminTok, 'POST', '/groups/g4/users', { users: ['bob'] })).status, 200)
    const member = await api(ta, 'GET', '/users/bob/tokens')
    t.equal(member.status, 200, 'a member\'s tokens, right after the add')
    t.same(member.body.api_tokens.map((m: any) => m.note), ['bob\'s'])
    t.equal((await api(ta, 'GET', '/users/alice/tokens')).status, 404, 'not a non-member\'s')
    t.equal((await api(adminTok, 'DELETE', '/groups/g4/users', { users: ['bob'] })).status, 200)
    t.same((await api(ta, 'GET', '/users/bob/tokens')).body, noAccess, 'removal counts at once')
    t.equal((await api(adminTok, 'POST', '/groups/g4/users', { users: ['bob'] })).status, 200)
    t.equal((await api(ta, 'GET', '/users/bob/tokens')).status, 200)
    const del = await api(adminTok, 'DELETE', '/groups/g4')
    t.equal(del.status, 204)
    t.equal(await del.headers.get('content-length') ?? '0', '0')
    const gone = await api(adminTok, 'DELETE', '/groups/g4')
    t.same(gone.body, { status: 404, message: 'No such group: g4', code: 'HUB_GROUP_NOT_FOUND' })
    t.same((await api(ta, 'GET', '/users/bob/tokens')).body, noAccess, 'the deleted group grants nothing')
    const rows = await hub.db.selectFrom('group_members').innerJoin('users', 'users.id', 'group_members.user_id').select('users.name').where('users.name', '=', 'bob').execute()
    t.same(rows, [], 'the membership rows went with the group')
  })
})
