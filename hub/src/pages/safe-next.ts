/** Where to go after signing in or starting: only same-site paths, `/x`, never `//evil.example` or `/\evil.example`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return ''
  return next
}
