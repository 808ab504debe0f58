/**
 * Some tests need a system package: Debian's jupyterhub (a real `jupyterhub-singleuser` and
 * JupyterHub 3.0), python3-psycopg2, chromium. Outside CI such a test skips, saying why, when
 * the package is missing. In CI (`CI=true`) `.ci/run` installs them, so a missing one is a broken
 * CI, not an optional extra: the test fails, naming what is missing, instead of letting a green
 * run skip what matters.
 */
import { accessSync, constants } from 'node:fs'
import path from 'node:path'

interface Tap {
  test(name: string, options: { skip: string }, fn: () => void): unknown
  test(name: string, fn: (t: { fail(message: string): void; end(): void }) => void): unknown
}

export const inCI = (env: NodeJS.ProcessEnv = process.env): boolean => env.CI === 'true' || env.CI === '1'

/** The absolute path of `cmd` on PATH, or undefined. */
export function which(cmd: string, pathVar = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue
    const file = path.join(dir, cmd)
    try { accessSync(file, constants.X_OK); return file } catch { /* next */ }
  }
  return undefined
}

/**
 * Register `name` as skipped (with `reason`) outside CI, or as a failure in CI. Call it in place of
 * the tests that cannot run without the missing package.
 */
export function missingPackage(t: Tap, name: string, reason: string, env: NodeJS.ProcessEnv = process.env): void {
  if (inCI(env)) {
    t.test(name, tt => { tt.fail(`${reason}; CI=true, and .ci/run installs it, so this is a broken CI, not a skip`); tt.end() })
  } else {
    t.test(name, { skip: reason }, () => {})
  }
}

/** The option for a `t.test` that needs the package: false when present; outside CI a skip reason; in CI a thrown error. */
export function needs(present: boolean, reason: string, env: NodeJS.ProcessEnv = process.env): false | string {
  if (present) return false
  if (inCI(env)) throw new Error(`${reason}; CI=true, and .ci/run installs it, so this is a broken CI, not a skip`)
  return reason
}
