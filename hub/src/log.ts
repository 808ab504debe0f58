import pino, { type Logger } from 'pino'

export type { Logger }

/** The hub's root logger. Secrets never reach the log: cookies and tokens are redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    base: { component: 'hub' },
    redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'token'],
  }, destination)
}
