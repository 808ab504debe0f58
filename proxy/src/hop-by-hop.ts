/** Connection-scoped (hop-by-hop) headers: never forwarded, in either direction (RFC 9110 7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])
