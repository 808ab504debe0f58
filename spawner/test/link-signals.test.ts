/**
 * linkSignals: aborts with whichever source aborts first, and once unlinked leaves nothing on the
 * sources (AbortSignal.any on Node 20 leaves a WeakRef on each for good: issue #16).
 */
import { getEventListeners } from 'node:events'
import t from 'tap'
import { linkSignals } from '../src/link-signals.js'

t.test('aborts with the reason of whichever source aborts', async t => {
  for (const which of [0, 1]) {
    const sources = [new AbortController(), new AbortController()]
    const link = linkSignals(sources.map(c => c.signal))
    t.equal(link.signal.aborted, false)
    const reason = new Error(`source ${which}`)
    sources[which]!.abort(reason)
    t.equal(link.signal.aborted, true)
    t.equal(link.signal.reason, reason)
    t.same(sources.map(c => getEventListeners(c.signal, 'abort').length), [0, 0], 'it let go of both sources')
  }
})

t.test('an already aborted source aborts the link at once', async t => {
  const reason = new Error('closed')
  const link = linkSignals([new AbortController().signal, AbortSignal.abort(reason)])
  t.equal(link.signal.aborted, true)
  t.equal(link.signal.reason, reason)
})

t.test('unlinked, a long-lived source keeps nothing of 10,000 links', async t => {
  const lifetime = new AbortController()
  for (let i = 0; i < 10_000; i++) {
    const link = linkSignals([new AbortController().signal, lifetime.signal])
    link.unlink()
  }
  t.equal(getEventListeners(lifetime.signal, 'abort').length, 0)
  const dependants = Object.getOwnPropertySymbols(lifetime.signal).find(s => String(s).includes('kDependantSignals'))
  t.equal(dependants === undefined ? 0 : (lifetime.signal as any)[dependants]?.size ?? 0, 0, 'no dependants recorded, unlike AbortSignal.any')
  lifetime.abort()
})
