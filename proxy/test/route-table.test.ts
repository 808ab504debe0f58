import t from 'tap'
import { normalizeRoutePath, RouteTable, routeJsonText, routeToJson } from '../src/route-table.js'

t.test('normalizeRoutePath follows CHP cleanPath', async t => {
  const cases: Array<[string, string]> = [
    ['/', '/'], ['', '/'], ['/user/alice/', '/user/alice'], ['/user/alice', '/user/alice'],
    ['user/alice', '/user/alice'], ['/user/alice//', '/user/alice/'], ['/user/carol/bad name!', '/user/carol/bad name!'],
  ]
  for (const [input, expected] of cases) t.equal(normalizeRoutePath(input), expected, JSON.stringify(input))
})

t.test('longest-prefix match is segment-wise', async t => {
  const table = new RouteTable()
  table.add('/', { target: 'http://hub' }, 1)
  table.add('/user/alice/', { target: 'http://alice' }, 1)
  table.add('/user/alice/foo', { target: 'http://alice-foo' }, 1)
  table.add('/user/bob', { target: 'http://bob' }, 1)
  const cases: Array<[string, string]> = [
    ['/user/alice', 'http://alice'], ['/user/alice/', 'http://alice'], ['/user/alice/lab/tree', 'http://alice'],
    ['/user/alice/foo', 'http://alice-foo'], ['/user/alice/foo/x', 'http://alice-foo'], ['/user/alice/foobar', 'http://alice'],
    ['/user/al', 'http://hub'], ['/user/alicex/y', 'http://hub'], ['/user/bob/api', 'http://bob'], ['/hub/login', 'http://hub'],
    ['/', 'http://hub'], ['', 'http://hub'], ['//user//alice', 'http://hub'], ['/user/alice/../bob', 'http://alice'],
  ]
  for (const [path, target] of cases) t.equal(table.match(path)?.target, target, path)
})

t.test('no root route: unmatched paths give undefined', async t => {
  const table = new RouteTable()
  table.add('/user/alice', { target: 'http://alice' }, 1)
  t.equal(table.match('/user/bob'), undefined)
  t.equal(table.match('/'), undefined)
  t.equal(table.match('/user/alice/x')?.path, '/user/alice')
})

t.test('remove prunes and falls back to the shorter prefix', async t => {
  const table = new RouteTable()
  table.add('/user', { target: 'http://user' }, 1)
  table.add('/user/alice/foo', { target: 'http://foo' }, 1)
  t.equal(table.match('/user/alice/foo/x')?.target, 'http://foo')
  t.equal(table.remove('/user/alice/foo/'), true)
  t.equal(table.remove('/user/alice/foo'), false)
  t.equal(table.remove('/user/alice'), false, 'an inner node without a route is not a route')
  t.equal(table.match('/user/alice/foo/x')?.target, 'http://user')
  t.equal(table.size, 1)
  t.equal(table.remove('/user'), true)
  t.equal(table.match('/user/alice'), undefined)
  t.equal(table.size, 0)
})

t.test('removing a parent keeps children', async t => {
  const table = new RouteTable()
  table.add('/a', { target: 'http://a' }, 1)
  table.add('/a/b', { target: 'http://ab' }, 1)
  table.remove('/a')
  t.equal(table.match('/a/b/c')?.target, 'http://ab')
  t.equal(table.match('/a/x'), undefined)
})

t.test('replace keeps insertion order, data verbatim, last_activity last', async t => {
  const table = new RouteTable()
  table.add('/b', { target: 'http://b' }, 1)
  table.add('/a', { hub: true, target: 'http://a', jupyterhub: true }, Date.parse('2026-11-28T14:26:36.196Z'))
  table.add('/b/', { target: 'http://b2', user: 'b' }, 2)
  t.same([...table.routes()].map(r => r.path), ['/b', '/a'])
  t.equal(table.match('/b/x')?.target, 'http://b2')
  const json = JSON.stringify(routeToJson(table.get('/a')!))
  t.equal(json, '{"hub":true,"target":"http://a","jupyterhub":true,"last_activity":"2026-11-28T14:26:36.196Z"}')
})

t.test('replaceAll swaps the whole table', async t => {
  const table = new RouteTable()
  table.add('/old', { target: 'http://old' }, 1)
  table.replaceAll([['/new/', { target: 'http://new' }, 5], ['/', { target: 'http://root' }, 6]])
  t.equal(table.size, 2)
  t.equal(table.match('/old/x')?.target, 'http://root')
  t.equal(table.get('/new')?.lastActivity, 5)
})

t.test('10,000 routes: every user reaches their own route', async t => {
  const table = new RouteTable()
  for (let i = 0; i < 10_000; i++) table.add(`/user/u${i}`, { target: `http://t${i}` }, 1)
  let wrong = 0
  for (let i = 0; i < 10_000; i++) if (table.match(`/user/u${i}/api/kernels`)?.target !== `http://t${i}`) wrong++
  t.equal(wrong, 0)
  for (let i = 0; i < 10_000; i += 2) table.remove(`/user/u${i}`)
  t.equal(table.size, 5000)
  t.equal(table.match('/user/u2/x'), undefined)
  t.equal(table.match('/user/u3/x')?.target, 'http://t3')
})

t.test('routeJsonText equals JSON.stringify(routeToJson()) in every shape', async t => {
  const table = new RouteTable()
  const shapes: Array<Record<string, unknown>> = [
    { target: 'http://a' }, { hub: true, target: 'http://a', jupyterhub: true }, { target: 'http://a', nested: { x: [1, '"q"'] } },
    { target: 'http://a', last_activity: 'given' }, { user: 'é ü \u2028', target: 'http://a' },
  ]
  shapes.forEach((data, i) => table.add(`/r${i}`, data, 1_700_000_000_123 + i))
  for (const route of table.routes()) t.equal(routeJsonText(route), JSON.stringify(routeToJson(route)), route.path)
})
