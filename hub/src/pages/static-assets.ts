/**
 * The hub's browser bundles under /hub/static/ (JupyterHub's static prefix). The build
 * (hub/scripts/bundle-browser.ts) writes them to dist/hub/static/ named after their content hash
 * and lists them in manifest.json; a page links the current file through `url()`, and browsers may
 * cache any of them for a year. Bundles hold code only, no data, so anyone may fetch them.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Router } from 'express'

export const STATIC_PREFIX = '/hub/static/'

/** A bundle or its source map: one path segment, no dots but the extension's. */
const ASSET_NAME = /^[\w-]+\.js(\.map)?$/

export interface StaticAssets {
  /** The URL of the current bundle of an entry (`'admin-page.js'`); throws when the build has not made it. */
  url(entry: string): string
  readonly router: Router
}

/** dist/hub/static, whether this module runs compiled (from dist/hub/src/pages/) or from source (tap, tsx). */
export function defaultStaticDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const sibling = path.resolve(here, '../../static')
  return existsSync(sibling) ? sibling : path.resolve(here, '../../../dist/hub/static')
}

export function createStaticAssets(dir = defaultStaticDir()): StaticAssets {
  // Read on first use and kept: the files of one build do not change under a running hub.
  let manifest: Readonly<Record<string, string>> | undefined
  const manifestFile = path.join(dir, 'manifest.json')

  function url(entry: string): string {
    if (!manifest) {
      if (!existsSync(manifestFile)) throw new Error(`${manifestFile} is missing: run npm run build to bundle the browser code`)
      manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<string, string>
    }
    const file = manifest[entry]
    if (!file) throw new Error(`${manifestFile} has no bundle for ${entry}: run npm run build`)
    return STATIC_PREFIX + file
  }

  const router = Router()
  router.get(`${STATIC_PREFIX}:file`, (req, res, next) => {
    const file = req.params.file as string
    if (!ASSET_NAME.test(file)) return next()
    res.sendFile(file, { root: dir, maxAge: '365d', immutable: true }, err => {
      if (err && !res.headersSent) next()
    })
  })
  return { url, router }
}
