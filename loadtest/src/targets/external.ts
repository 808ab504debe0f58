/** A hub someone else runs (`--target URL`): only HTTP, no pids, no database. */
import type { Target } from './target.js'

export function externalTarget(publicUrl: string, password: string): Target {
  return {
    publicUrl: publicUrl.replace(/\/+$/, ''), hubUrl: undefined, proxyApiUrl: undefined, proxyAuthToken: undefined, password, hubPort: undefined, publicPort: undefined,
    databaseUrl: undefined, pgConnections: undefined, profileDir: undefined,
    processes: [{ name: 'generator', pid: () => process.pid }],
    description: { kind: 'external', url: publicUrl, simulatedCluster: 'unknown' },
    adminToken: async () => { throw new Error('the api scenarios need --target fleethub (or an API token; not supported yet)') },
    async close() { /* not ours */ },
  }
}
