/**
 * One embedded Postgres per `tap` run, shared by every test file: started by `before.ts`,
 * stopped by `after.ts`. Each file clones its own database from a migrated template
 * (test/helpers/db.ts), so files never see each other's rows. Keyed by the tap runner's pid
 * (the parent of both the before script and every test file), so two tap runs on one machine
 * never share or stop each other's server.
 */
import os from 'node:os'
import path from 'node:path'

export interface SharedPostgresInfo {
  readonly adminUrl: string
  readonly templateDb: string
  readonly pid: number
  readonly dataRoot: string
}

export const TEMPLATE_DB = 'hub_template'

export function infoFile(runnerPid: number): string {
  return path.join(os.tmpdir(), `fleethub-test-${runnerPid}.json`)
}

export function dataRoot(runnerPid: number): string {
  return path.join(os.tmpdir(), `fleethub-test-pg-${runnerPid}`)
}
