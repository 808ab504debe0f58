/** The --cpu-prof flamegraph: the call tree's times add up, and a real profile renders with its frames. */
import { Session } from 'node:inspector/promises'
import t from 'tap'
import { callTree, flamegraphHtml, type CpuProfile } from '../src/flamegraph.js'

const frame = (functionName: string, url = 'file:///work/main/dist/hub/src/x.js', lineNumber = 0) => ({ functionName, url, lineNumber })

t.test('self and total times from samples and time deltas', async t => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
      { id: 2, callFrame: frame('handle'), children: [3] },
      { id: 3, callFrame: frame('query', 'file:///x/node_modules/pg/lib/client.js', 9) },
      { id: 4, callFrame: frame('(garbage collector)', '') },
    ],
    // 30 ms in handle, 10 ms in query, 60 ms in GC (time deltas in microseconds)
    samples: [2, 2, 2, 3, 4, 4],
    timeDeltas: [10_000, 10_000, 10_000, 10_000, 30_000, 30_000],
  }
  const root = callTree(profile)
  t.equal(root.totalMs, 100)
  const handle = root.children.find(c => c.name === 'handle')!
  t.equal(handle.selfMs, 30)
  t.equal(handle.totalMs, 40, 'includes its callee')
  t.equal(handle.children[0]!.where, 'node_modules/pg/lib/client.js:10')
  const html = flamegraphHtml(profile, 'test <profile>')
  t.match(html, /<title>test &lt;profile&gt;<\/title>/, 'escaped')
  t.match(html, /handle dist\/hub\/src\/x\.js:1 — 40 ms \(40\.0%\), self 30 ms/)
  t.match(html, /<td>60\.0%<\/td><td>60<\/td><td><code>\(garbage collector\) <\/code>/, 'top self time first')
})

t.test('a real profile of this process renders with the function that burned the CPU', async t => {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  function spinForAWhile(): number { let x = 0; const end = Date.now() + 200; while (Date.now() < end) x += Math.sqrt(x + 1); return x }
  spinForAWhile()
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  const html = flamegraphHtml(profile as unknown as CpuProfile, 'real')
  t.match(html, /<svg [^>]*role="img"/)
  t.match(html, /spinForAWhile/)
})
