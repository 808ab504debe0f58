/**
 * "Cull idle now": a dry run lists what would be stopped, a second click stops it; below it the
 * cull log (GET /hub/api/cull/events), newest first.
 */
import { api, messageOf } from './api.js'
import { $, duration, el } from './dom.js'

interface CullCandidate { readonly user: string; readonly server: string; readonly idle_seconds: number; readonly rule: string }
interface CullPreview { readonly servers: readonly CullCandidate[] }
interface CullRun { readonly stopped: number; readonly skipped: number; readonly users_deleted: number }
interface CullEvent {
  readonly at: string | null
  readonly user: string
  readonly server: string
  readonly action: string
  readonly dry_run: boolean
  readonly rule: string
  readonly idle_seconds: number | null
  readonly by: string
}

const plural = (n: number, word: string) => n + ' ' + word + (n === 1 ? '' : 's')

export async function previewCull(): Promise<void> {
  const out = $('cull-preview-list'), status = $('cull-status'), confirm = $('cull-confirm')
  status.textContent = 'Looking for idle servers…'; out.textContent = ''; confirm.hidden = true
  let r: CullPreview
  try { r = await api<CullPreview>('POST', '/cull', { dry_run: true }) } catch (err) { status.textContent = 'Preview failed: ' + messageOf(err); return }
  const previewed = r.servers.length
  for (const s of r.servers) {
    out.appendChild(el('li', s.user + (s.server ? '/' + s.server : '') + ': idle ' + duration(s.idle_seconds) + ' (' + s.rule + ')'))
  }
  status.textContent = previewed === 0 ? 'No server is idle past the timeout; nothing to cull.' : plural(previewed, 'server') + ' would be stopped:'
  confirm.textContent = 'Stop ' + plural(previewed, 'idle server')
  confirm.hidden = previewed === 0
}

/** Stops the idle servers, then calls `refresh` (the user table and the counts). */
export async function runCull(refresh: () => void): Promise<void> {
  const status = $('cull-status')
  $('cull-confirm').hidden = true; status.textContent = 'Culling…'
  try {
    const r = await api<CullRun>('POST', '/cull', {})
    status.textContent = 'Cull done: ' + r.stopped + ' stopped, ' + r.skipped + ' skipped' + (r.users_deleted ? ', ' + r.users_deleted + ' users deleted' : '') + '.'
    $('cull-preview-list').textContent = ''
  } catch (err) { status.textContent = 'Cull failed: ' + messageOf(err) }
  void loadCullLog(); refresh()
}

export async function loadCullLog(): Promise<void> {
  let r: { events: readonly CullEvent[] }
  try { r = await api<{ events: readonly CullEvent[] }>('GET', '/cull/events?limit=20') } catch (err) {
    $('cull-status').textContent = 'Could not read the cull log: ' + messageOf(err); return
  }
  const body = $('cull-log-body')
  body.textContent = ''
  for (const e of r.events) {
    const tr = el('tr')
    tr.appendChild(el('td', e.at ? new Date(e.at).toLocaleString() : '', { title: e.at || '' }))
    tr.appendChild(el('td', e.user + (e.server ? '/' + e.server : '')))
    tr.appendChild(el('td', e.action + (e.dry_run ? ' (preview)' : '')))
    tr.appendChild(el('td', e.rule))
    tr.appendChild(el('td', e.idle_seconds === null || e.idle_seconds === undefined ? '' : duration(e.idle_seconds)))
    tr.appendChild(el('td', e.by))
    body.appendChild(tr)
  }
  if (r.events.length === 0) { const tr = el('tr'); tr.appendChild(el('td', 'Nothing culled yet.', { colspan: '6' })); body.appendChild(tr) }
}
