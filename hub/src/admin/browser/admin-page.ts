/**
 * The admin page's browser code (entry point), bundled by esbuild at build time into
 * dist/hub/static/admin-page-<hash>.js (hub/scripts/bundle-browser.ts) and type-checked with the DOM
 * lib by tsconfig.browser.json. The page is a shell: the user table comes from GET /hub/api/users
 * one page of 50 at a time, so it stays fast at 50,000 users. Every state change goes through the
 * REST API with the session cookie.
 */
import { submitAddForm } from './add-users.js'
import { api, messageOf, PAGINATED, userPath, type ApiUser, type Paginated } from './api.js'
import { loadCullLog, previewCull, runCull } from './cull-panel.js'
import { $, ago, el, num, say } from './dom.js'
import { addToGroup, createGroup, loadGroups } from './groups-panel.js'

const PAGE = 50, CONCURRENCY = 10, STATS_EVERY_MS = 4000, SEARCH_DEBOUNCE_MS = 300
const cfg = JSON.parse($('admin-config').textContent ?? '{}') as { me: string }
const view = { offset: 0, sort: 'name', filter: '', state: '', total: 0, users: [] as ApiUser[] }
const selected = new Set<string>()
let loadSeq = 0, pendingTimer = 0, pendingRounds = 0

type ServerState = 'starting' | 'stopping' | 'running' | 'stopped'

function serverState(u: ApiUser): ServerState {
  if (u.pending === 'spawn') return 'starting'
  if (u.pending === 'stop') return 'stopping'
  if (u.server) return 'running'
  return 'stopped'
}

// ---- the user table, one page of 50 from GET /hub/api/users ----
async function load(): Promise<void> {
  const seq = ++loadSeq
  const q = new URLSearchParams({ offset: String(view.offset), limit: String(PAGE), sort: view.sort })
  if (view.filter) q.set('name_filter', view.filter)
  if (view.state) q.set('state', view.state)
  $('table-status').textContent = 'Loading…'
  let page: Paginated<ApiUser>
  try { page = await api<Paginated<ApiUser>>('GET', '/users?' + q.toString(), undefined, PAGINATED) } catch (err) {
    if (seq !== loadSeq) return
    $('table-status').textContent = ''
    say('Could not load users: ' + messageOf(err), true)
    return
  }
  if (seq !== loadSeq) return // a newer query superseded this one
  view.total = page._pagination.total
  view.users = page.items
  if (view.offset > 0 && view.offset >= view.total) { view.offset = Math.max(0, Math.floor((view.total - 1) / PAGE) * PAGE); return load() }
  render()
  $('table-status').textContent = ''
  schedulePendingRefresh()
}

/** While a visible server is starting or stopping, refresh the page now and then (bounded). */
function schedulePendingRefresh(): void {
  clearTimeout(pendingTimer)
  if (!view.users.some(u => u.pending)) { pendingRounds = 0; return }
  if (++pendingRounds > 60) return
  pendingTimer = setTimeout(load, 1500)
}

function actionButton(label: string, cls: string, onClick: () => Promise<void>, name: string): HTMLButtonElement {
  const b = el('button', label, { type: 'button', class: cls, 'aria-label': label + ' ' + name })
  b.addEventListener('click', () => { b.disabled = true; void onClick().then(() => { b.disabled = false }) })
  return b
}

function renderRow(u: ApiUser): HTMLTableRowElement {
  const tr = el('tr', null, { 'data-user': u.name })
  const box = el('input', null, { type: 'checkbox', 'aria-label': 'Select ' + u.name, class: 'select-user' })
  box.checked = selected.has(u.name)
  box.addEventListener('change', () => { if (box.checked) selected.add(u.name); else selected.delete(u.name); renderSelection() })
  const c0 = el('td'); c0.appendChild(box); tr.appendChild(c0)
  tr.appendChild(el('td', u.name, { class: 'name' }))
  tr.appendChild(el('td', u.admin ? 'admin' : '', { class: 'admin' }))
  const st = serverState(u)
  tr.appendChild(el('td', st, { class: 'state state-' + st }))
  tr.appendChild(el('td', ago(u.last_activity), { class: 'activity', title: u.last_activity || '' }))
  const actions = el('td', null, { class: 'actions' })
  if (st === 'stopped') actions.appendChild(actionButton('Start', 'small', () => act(startServer, u.name, 'Started'), u.name))
  else if (st === 'running' || st === 'starting') actions.appendChild(actionButton('Stop', 'small danger', () => act(stopServer, u.name, 'Stopped'), u.name))
  actions.appendChild(actionButton(u.admin ? 'Remove admin' : 'Make admin', 'small secondary', () => act(n => setAdmin(n, !u.admin), u.name, u.admin ? 'Removed admin from' : 'Made admin:'), u.name))
  if (u.name !== cfg.me) {
    actions.appendChild(actionButton('Delete', 'small secondary', async () => {
      if (!window.confirm('Delete user ' + u.name + '? Their server is stopped first.')) return
      return act(deleteUser, u.name, 'Deleted')
    }, u.name))
  }
  tr.appendChild(actions)
  return tr
}

function render(): void {
  const body = $('users-body')
  body.textContent = ''
  if (view.users.length === 0) {
    const tr = el('tr'); tr.appendChild(el('td', view.filter || view.state ? 'No user matches.' : 'No users yet.', { colspan: '6' })); body.appendChild(tr)
  }
  for (const u of view.users) body.appendChild(renderRow(u))
  const first = view.total === 0 ? 0 : view.offset + 1, last = view.offset + view.users.length
  $('page-info').textContent = num(first) + '–' + num(last) + ' of ' + num(view.total)
  $<HTMLButtonElement>('prev').disabled = view.offset === 0
  $<HTMLButtonElement>('next').disabled = last >= view.total
  document.querySelectorAll('th[data-sort]').forEach(th => {
    const key = th.getAttribute('data-sort')
    const dir = view.sort === key ? 'ascending' : view.sort === '-' + key ? 'descending' : 'none'
    th.setAttribute('aria-sort', dir)
    th.querySelector('.dir')!.textContent = dir === 'ascending' ? ' ▲' : dir === 'descending' ? ' ▼' : ''
  })
  $<HTMLInputElement>('select-page').checked = view.users.length > 0 && view.users.every(u => selected.has(u.name))
  renderSelection()
}

function renderSelection(): void {
  const n = selected.size
  $('selection-info').textContent = n === 0 ? 'No users selected' : n + ' selected'
  for (const id of ['bulk-start', 'bulk-stop', 'bulk-delete', 'bulk-clear', 'group-add']) $<HTMLButtonElement>(id).disabled = n === 0
}

// ---- actions ----
const startServer = (name: string) => api('POST', userPath(name) + '/server')
const stopServer = (name: string) => api('DELETE', userPath(name) + '/server')
const setAdmin = (name: string, admin: boolean) => api('PATCH', userPath(name), { admin })
const deleteUser = async (name: string) => { await api('DELETE', userPath(name)); selected.delete(name) }

function refresh(): void { void load(); void refreshStats() }

async function act(fn: (name: string) => Promise<unknown>, name: string, done: string): Promise<void> {
  say('')
  try { await fn(name); say(done + ' ' + name + '.') } catch (err) { say(name + ': ' + messageOf(err), true) }
  refresh()
}

/** Run fn over names, CONCURRENCY at a time, with progress text; failures are listed, not fatal. */
async function runBulk(label: string, names: string[], fn: (name: string) => Promise<unknown>): Promise<void> {
  const out = $('bulk-progress'), failed: string[] = []
  let i = 0, ok = 0
  const show = () => { out.textContent = label + ': ' + (ok + failed.length) + ' of ' + names.length + ' done' + (failed.length ? ', ' + failed.length + ' failed' : '') }
  show()
  async function worker(): Promise<void> {
    while (i < names.length) {
      const name = names[i++]!
      try { await fn(name); ok++ } catch (err) { failed.push(name + ': ' + messageOf(err)) }
      show()
    }
  }
  const workers: Promise<void>[] = []
  for (let k = 0; k < Math.min(CONCURRENCY, names.length); k++) workers.push(worker())
  setBulkDisabled(true)
  await Promise.all(workers)
  out.textContent = label + ': ' + ok + ' of ' + names.length + ' succeeded' + (failed.length ? '. Failed: ' + failed.slice(0, 5).join('; ') + (failed.length > 5 ? '; …' : '') : '.')
  setBulkDisabled(false)
  refresh()
}
function setBulkDisabled(d: boolean): void {
  for (const id of ['bulk-start', 'bulk-stop', 'bulk-delete']) $<HTMLButtonElement>(id).disabled = d || selected.size === 0
}
const selectedNames = () => Array.from(selected).sort()

// ---- live counts (GET /hub/admin/stats, outside the REST API) ----
let statsTimer = 0, statsTicks = 0
async function refreshStats(): Promise<void> {
  try {
    const res = await fetch('/hub/admin/stats', { credentials: 'same-origin', headers: { accept: 'application/json' } })
    if (!res.ok) throw new Error('HTTP ' + res.status)
    const s = await res.json() as { running: number; pending: number; queued: number; stopping: number }
    $('stat-running').textContent = num(s.running)
    $('stat-pending').textContent = num(s.pending)
    $('stat-queued').textContent = num(s.queued)
    $('stat-stopping').textContent = num(s.stopping)
    $('stats-error').textContent = ''
  } catch (err) { $('stats-error').textContent = '(counts unavailable: ' + messageOf(err) + ')' }
}
function pollStats(): void {
  clearTimeout(statsTimer)
  statsTimer = setTimeout(() => {
    if (document.hidden) return pollStats()
    void refreshStats().then(() => { if (++statsTicks % 4 === 0) void loadCullLog(); pollStats() })
  }, STATS_EVERY_MS)
}

// ---- wiring ----
function wire(): void {
  let searchTimer = 0
  const search = $<HTMLInputElement>('search'), stateFilter = $<HTMLSelectElement>('state-filter')
  search.addEventListener('input', () => {
    clearTimeout(searchTimer)
    searchTimer = setTimeout(() => { view.filter = search.value.trim(); view.offset = 0; void load() }, SEARCH_DEBOUNCE_MS)
  })
  stateFilter.addEventListener('change', () => { view.state = stateFilter.value; view.offset = 0; void load() })
  document.querySelectorAll('th[data-sort] button').forEach(b => {
    b.addEventListener('click', () => {
      const key = b.parentElement!.getAttribute('data-sort')!
      view.sort = view.sort === key ? '-' + key : key
      view.offset = 0; void load()
    })
  })
  $('prev').addEventListener('click', () => { view.offset = Math.max(0, view.offset - PAGE); void load() })
  $('next').addEventListener('click', () => { view.offset += PAGE; void load() })
  $('select-page').addEventListener('change', () => {
    const on = $<HTMLInputElement>('select-page').checked
    for (const u of view.users) { if (on) selected.add(u.name); else selected.delete(u.name) }
    render()
  })
  $('bulk-clear').addEventListener('click', () => { selected.clear(); render() })
  $('bulk-start').addEventListener('click', () => void runBulk('Starting', selectedNames(), startServer))
  $('bulk-stop').addEventListener('click', () => void runBulk('Stopping', selectedNames(), stopServer))
  $('bulk-delete').addEventListener('click', () => {
    const names = selectedNames().filter(n => n !== cfg.me)
    if (!window.confirm('Delete ' + names.length + ' users? Their servers are stopped first.')) return
    void runBulk('Deleting', names, deleteUser)
  })
  $('add-form').addEventListener('submit', ev => { ev.preventDefault(); void submitAddForm(() => void load()) })
  $('group-form').addEventListener('submit', ev => { ev.preventDefault(); void createGroup() })
  $('group-add').addEventListener('click', () => void addToGroup(selectedNames()))
  $('cull-preview').addEventListener('click', () => void previewCull())
  $('cull-confirm').addEventListener('click', () => void runCull(refresh))
  $('cull-log-refresh').addEventListener('click', () => void loadCullLog())
}

wire()
void load(); void loadGroups(); void loadCullLog(); void refreshStats(); pollStats()
