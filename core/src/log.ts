import pino, { type Logger } from 'pino'

export type { Logger }

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' }
const SKIP = new Set(['level', 'time', 'msg', 'component', 'pid', 'hostname'])

/**
 * One line a record for a person at a terminal (`12:00:01 INFO  [spawn] server ready user=alice`);
 * JSON lines everywhere else (files, log collectors).
 */
export function prettyStream(out: NodeJS.WritableStream = process.stdout): pino.DestinationStream {
  return {
    write(line: string) {
      let o: Record<string, unknown>
      try { o = JSON.parse(line) as Record<string, unknown> } catch { out.write(line); return }
      const time = new Date(Number(o.time)).toTimeString().slice(0, 8)
      const fields = Object.entries(o).filter(([k]) => !SKIP.has(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`).join(' ')
      out.write(`${time} ${LEVELS[Number(o.level)] ?? o.level} [${String(o.component ?? 'hub')}] ${String(o.msg ?? '')}${fields ? ` ${fields}` : ''}\n`)
    },
  }
}

/**
 * The hub's root logger (also the load tests' and the test setup's). Secrets never reach the log:
 * cookies and tokens are redacted.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    base: { component: 'hub' },
    redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'token'],
  }, destination ?? (process.stdout.isTTY ? prettyStream() : undefined))
}
