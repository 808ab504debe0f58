/**
 * The hub's CPU profile after a `--profile hub` run. The hub runs under `node --cpu-prof`
 * (targets/fleethub.ts), which writes one `.cpuprofile` when the process exits; this keeps it gzipped next to
 * the report (the raw data: gunzip it and open it in Chrome DevTools' Performance panel or
 * speedscope) and renders the flamegraph of the load's window from it, with frames named by their
 * place in the repository: `hub/src/app.ts:12` through dist/'s source maps, `node_modules/pg/...`.
 *
 * Why not 0x: 0x runs `node --prof`, and with `--cpu-prof` beside it (added as a fallback) V8's
 * tick log gets a handful of ticks: 7 to 12 in the committed runs of 2026-11-29, none of them in
 * JavaScript (22 against 4,681 for the same 8 s busy script without --cpu-prof). Alone, its tick log
 * grows ~0.3 MB a second, which 0x reads whole and runs through `node --prof-process` only after the
 * hub exits (long runs outlasted the harness's wait), and its preload exits the hub on SIGINT
 * without the hub's own shutdown. --cpu-prof needs no post-processing and writes on a clean exit.
 */
import fs from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { renderFlamegraph, windowedSamples, type CpuProfile, type Locate, type ProfileSummary, type ProfileWindow } from './flamegraph.js'

/**
 * The main threads' profiles among those `node --cpu-prof` left, `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`
 * with thread 0: one per process (`--workers N`: the cluster primary and each worker, which inherit
 * `--cpu-prof`). Each thread writes its own, and a hub started with loader hooks in NODE_OPTIONS
 * (tsx, tap's) has a loader worker whose profile, under a fixed --cpu-prof-name, overwrote the hub's.
 */
export function mainThreadProfiles(files: readonly string[]): string[] {
  return files.filter(f => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f)).sort()
}

/** Samples that were not idle, in `window` when given: how busy the process was. */
export function busySamples(profile: CpuProfile, window?: ProfileWindow): number {
  const { deltas, idleSamples } = windowedSamples(profile, window)
  return deltas.length - idleSamples
}

/** What a profiled run keeps: file names in the report folder, and the flamegraph's figures. */
export interface HubProfile {
  readonly flamegraph: string
  readonly raw: string
  readonly summary: ProfileSummary
  /** The drawn window, on the raw profile's clock (monotonic microseconds), to slice it again. */
  readonly window?: ProfileWindow
}

const gzip = promisify(zlib.gzip)

/** Microseconds on the monotonic clock, the clock of a .cpuprofile's times (any process on this machine). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/**
 * A file as a reader of the repository names it: its path relative to `repo`; a node_modules
 * linked from elsewhere (a symlinked or shared install) from `node_modules/` on; anything else
 * outside the repository by its file name only. `inside` says which.
 */
function repoPath(repo: string, file: string): { path: string; inside: boolean } {
  const rel = path.relative(repo, file)
  if (!rel.startsWith('..') && !path.isAbsolute(rel)) return { path: rel.split(path.sep).join('/'), inside: true }
  const nm = file.indexOf(`${path.sep}node_modules${path.sep}`)
  return { path: (nm >= 0 ? file.slice(nm + 1) : path.basename(file)).split(path.sep).join('/'), inside: false }
}

/**
 * Frame locations relative to `repo` (repoPath), a dist/ file with a source map as its TypeScript
 * line (`hub/src/app.ts:12`), Node's own modules as they are (`node:net:300`).
 */
export function repoLocator(repo: string): Locate {
  const maps = new Map<string, SourceMap | undefined>()
  const mapOf = (file: string) => {
    if (!maps.has(file)) {
      let map: SourceMap | undefined
      try { if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) } catch { /* no usable map */ }
      maps.set(file, map)
    }
    return maps.get(file)
  }
  return (url, line0, column0) => {
    if (!url.startsWith('file://') && !url.startsWith('/')) return `${url}:${line0 + 1}`
    const file = url.startsWith('file://') ? fileURLToPath(url) : url
    const where = repoPath(repo, file)
    if (where.inside && !where.path.startsWith('node_modules/')) {
      const entry = mapOf(file)?.findEntry(line0, column0) as { generatedLine?: number; originalSource?: string; originalLine?: number } | undefined
      if (entry?.originalSource && entry.generatedLine === line0 && entry.originalLine !== undefined) {
        const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource)
        return `${repoPath(repo, source).path}:${entry.originalLine + 1}`
      }
    }
    return `${where.path}:${line0 + 1}`
  }
}

/** The profile as committed: file URLs as repoPath names them (`dist/hub/src/app.js`), so the raw data names no path of this machine. */
export function withRepoRelativeUrls(profile: CpuProfile, repo: string): CpuProfile {
  const relative = (url: string) => url.startsWith('file://') ? repoPath(repo, fileURLToPath(url)).path : url
  return { ...profile, nodes: profile.nodes.map(n => ({ ...n, callFrame: { ...n.callFrame, url: relative(n.callFrame.url) } })) }
}

/**
 * Keep the hub's profile from `profileDir` (then removed): `<raw>` gzipped, with repository-relative
 * URLs, and `<name>`, the flamegraph of `window`, in `reportDir`. Undefined when the hub wrote no
 * profile (it did not exit by itself: killed, or crashed).
 */
export async function keepHubProfile(profileDir: string, reportDir: string, o: { repo: string; title: string; window?: ProfileWindow; name?: string; raw?: string }): Promise<HubProfile | undefined> {
  const name = o.name ?? 'flamegraph.html'
  const raw = o.raw ?? name.replace(/\.html$/, '') + '.cpuprofile.gz'
  try {
    // With `--workers N` every hub process writes one: draw the busiest over the window (a worker;
    // the primary only accepts connections), and say how busy each was.
    const files = mainThreadProfiles(await fs.readdir(profileDir).catch(() => []))
    let profile: CpuProfile | undefined
    let chosen = { busy: -1, pid: '' }
    const processes: string[] = []
    for (const file of files) {
      const p = JSON.parse(await fs.readFile(path.join(profileDir, file), 'utf8')) as CpuProfile
      const busy = busySamples(p, o.window)
      const pid = file.split('.')[3]!
      processes.push(`pid ${pid}: ${busy} busy samples`)
      if (busy > chosen.busy) { profile = p; chosen = { busy, pid } }
    }
    if (profile === undefined) return undefined
    await fs.writeFile(path.join(reportDir, raw), await gzip(JSON.stringify(withRepoRelativeUrls(profile, o.repo)), { level: 9 }))
    const window = o.window && profile.startTime !== undefined ? o.window : undefined
    const which = files.length > 1 ? ` Of the ${files.length} hub processes (${processes.join(', ')}), the busiest is drawn: pid ${chosen.pid}.` : ''
    const note = (window ? 'Only the load is drawn: the samples from the first step\'s start to the last step\'s end (start-up and shutdown are in the raw profile).' : '') + which
    const { html, summary } = renderFlamegraph(profile, o.title, { window, locate: repoLocator(o.repo), note })
    await fs.writeFile(path.join(reportDir, name), html)
    return { flamegraph: name, raw, summary, ...(window ? { window } : {}) }
  } finally {
    await fs.rm(profileDir, { recursive: true, force: true })
  }
}
