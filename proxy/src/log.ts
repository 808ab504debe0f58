import { pino, type Logger } from 'pino'

export type { Logger }

/** CHP's --log-level values plus pino's own; CHP's `warn`/`error`/`debug`/`info` map one to one. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** The root logger; only main.ts calls this. Everything else gets a child. */
export function createRootLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { component: 'proxy', pid: process.pid },
    redact: ['req.headers.authorization', 'req.headers.cookie'],
  })
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

/** A path for logs: never the query string (tokens travel there). */
export function logPath(url: string | undefined): string {
  if (url === undefined) return ''
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
