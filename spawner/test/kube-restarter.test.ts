/** The watches' shared restart-with-backoff: a failure schedules one retry, stop ends it. */
import pino from 'pino'
import t from 'tap'
import { waitFor } from '../../test/helpers/wait.js'
import { Restarter } from '../src/kube-restarter.js'

function recordingLog(): { log: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'warn' }, { write: (s: string) => { lines.push(JSON.parse(s)) } })
  return { log, lines }
}

t.test('a rejected attempt is retried after a logged, bounded delay', async t => {
  const { log, lines } = recordingLog()
  let runs = 0
  const r = new Restarter(async () => { runs++; if (runs === 1) throw Object.assign(new Error('boom'), { code: 503 }) }, log)
  t.teardown(() => r.stop())
  r.start()
  await waitFor('the retry', async () => runs === 2 || undefined, 2000, 5)
  t.equal(lines.length, 1)
  t.match(lines[0], { msg: 'watch failed; restarting', err: 'boom', status: 503 })
  t.ok((lines[0].delayMs as number) <= 500, 'the first retry waits at most 2 x 250 ms')
})

t.test('failures in a row pend one retry only; stop cancels it and ignores later failures', async t => {
  const { log, lines } = recordingLog()
  let runs = 0
  const r = new Restarter(async () => { runs++ }, log)
  r.failed(new Error('a'))
  r.failed(new Error('b'))
  await waitFor('the retry', async () => runs >= 1 || undefined, 2000, 5)
  await new Promise(resolve => setTimeout(resolve, 1100))
  t.equal(runs, 1, 'the second failure replaced the first retry')
  r.failed(new Error('c'))
  r.stop()
  t.equal(r.stopped, true)
  r.failed(new Error('d'))
  await new Promise(resolve => setTimeout(resolve, 1100))
  t.equal(runs, 1, 'nothing runs after stop')
  t.equal(lines.length, 3, 'the failure after stop is not logged')
})

t.test('healthy resets the backoff', async t => {
  const { log, lines } = recordingLog()
  const r = new Restarter(async () => undefined, log)
  t.teardown(() => r.stop())
  for (let i = 0; i < 8; i++) r.failed(new Error('x'))
  r.healthy()
  r.failed(new Error('y'))
  t.ok((lines.at(-1)!.delayMs as number) <= 500, 'back to the first step')
})
