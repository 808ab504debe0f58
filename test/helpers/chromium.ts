/**
 * Real headless Chromium for page tests (DEPENDENCIES.md §8): Debian's chromium binary driven by
 * playwright-core, a fresh profile per launch, closed in teardown. Tests call `chromiumPath()`
 * first and skip, saying why, when no chromium is installed.
 */
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

interface T { teardown(fn: () => unknown): void }

export const SCREENSHOT_DIR = path.resolve(import.meta.dirname, '../../test-artifacts/screenshots')

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** The chromium binary: $CHROMIUM, else `chromium` / `chromium-browser` on PATH; undefined if none. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM && fs.existsSync(env.CHROMIUM)) return env.CHROMIUM
  for (const dir of (env.PATH ?? '/usr/bin').split(path.delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const p = path.join(dir, name)
      try { fs.accessSync(p, fs.constants.X_OK); return p } catch { /* next */ }
    }
  }
  return undefined
}

export interface ChromiumSession {
  readonly context: BrowserContext
  /** A new tab that fails the test on uncaught page errors (collected in `errors`). */
  newPage(): Promise<Page & { readonly errors: string[] }>
}

export async function launchChromium(t: T, executablePath: string): Promise<ChromiumSession> {
  const profile = await fsp.mkdtemp(path.join(os.tmpdir(), 'fleethub-chromium-'))
  t.teardown(() => fsp.rm(profile, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args: FLAGS, viewport: { width: 1100, height: 760 }, timeout: 30_000,
  })
  t.teardown(() => context.close())
  context.setDefaultTimeout(15_000)
  return {
    context,
    async newPage() {
      const page = await context.newPage()
      const errors: string[] = []
      page.on('pageerror', err => errors.push(String(err)))
      return Object.assign(page, { errors })
    },
  }
}

/** Saves the visible page to test-artifacts/screenshots/<name>.png (git-ignored). */
export async function screenshot(page: Page, name: string): Promise<string> {
  await fsp.mkdir(SCREENSHOT_DIR, { recursive: true })
  const file = path.join(SCREENSHOT_DIR, `${name}.png`)
  await page.screenshot({ path: file })
  return file
}
