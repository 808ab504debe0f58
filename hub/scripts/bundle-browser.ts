/**
 * Bundles the hub's browser code with esbuild into dist/hub/static/: one minified IIFE per page,
 * named after its content hash (`admin-page-<hash>.js`, with a linked source map), and
 * manifest.json mapping each entry to its file. The hub reads the manifest to link the current
 * bundle (hub/src/pages/static-assets.ts), so browsers may cache a bundle for a year.
 * Run by `npm run build` after tsc, which type-checks the same code (tsconfig.browser.json).
 */
import { build } from 'esbuild'
import { existsSync } from 'node:fs'
import { readdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Each page's entry point; the key names the bundle. */
const ENTRIES: Readonly<Record<string, string>> = {
  'admin-page': 'hub/src/admin/browser/admin-page.ts',
}

/** The checkout: the nearest folder above this file holding package.json (it runs from dist/). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('bundle-browser: no package.json above ' + fileURLToPath(import.meta.url))
    dir = up
  }
  return dir
}

async function bundleBrowser(): Promise<void> {
  const root = packageRoot()
  const outdir = path.join(root, 'dist/hub/static')
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.entries(ENTRIES).map(([out, src]) => ({ in: src, out })),
    outdir, entryNames: '[name]-[hash]', bundle: true, format: 'iife', platform: 'browser', target: 'es2022',
    minify: true, sourcemap: 'linked', metafile: true, logLevel: 'warning',
  })
  const manifest: Record<string, string> = {}
  const keep = new Set(['manifest.json'])
  for (const [file, out] of Object.entries(result.metafile.outputs)) {
    keep.add(path.basename(file))
    if (!out.entryPoint) continue
    const name = Object.keys(ENTRIES).find(k => ENTRIES[k] === out.entryPoint)
    if (!name) throw new Error(`bundle-browser: ${file} comes from no known entry (${out.entryPoint})`)
    manifest[`${name}.js`] = path.basename(file)
  }
  // Write the manifest whole (a running hub may read it), then drop bundles of earlier builds.
  const tmp = path.join(outdir, `manifest.json.${process.pid}.tmp`)
  await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n')
  await rename(tmp, path.join(outdir, 'manifest.json'))
  for (const file of await readdir(outdir)) if (!keep.has(file)) await rm(path.join(outdir, file), { force: true })
  console.log(`bundle-browser: ${Object.values(manifest).map(f => `dist/hub/static/${f}`).join(', ')}`)
}

await bundleBrowser()
