/**
 * The admin page's HTML: a shell only. Nothing per user is rendered on the server, so the page
 * costs the same with 50 or 50,000 users; its script (browser/admin-page.ts, bundled at build time)
 * fills the table one API page at a time.
 */
import { html, jsonForScript, raw } from '../../../core/src/html.js'
import { layout } from '../pages/layout.js'

const STYLE = raw(`
  main { max-width: 72rem; }
  section { margin: 1.6rem 0; }
  h2 { font-size: 1.15rem; margin-bottom: .4rem; }
  .toolbar { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; }
  .toolbar label { margin: 0 0 .2rem; }
  .toolbar .field { flex: 1 1 14rem; }
  .toolbar select { width: auto; }
  table { width: 100%; border-collapse: collapse; font-size: .95rem; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8883; vertical-align: middle; }
  th button { background: none; border: none; color: inherit; font-weight: 700; padding: 0; }
  td.actions { white-space: nowrap; }
  button:disabled { opacity: .45; cursor: default; }
  label.check { font-weight: 400; }
  button.small { padding: .2rem .6rem; font-size: .85rem; margin-right: .25rem; }
  .state-running { color: #2e7d32; font-weight: 600; }
  .state-starting, .state-stopping { color: #b26a00; }
  .pager { display: flex; gap: .8rem; align-items: center; margin: .6rem 0; }
  .stats { display: flex; gap: 1.4rem; flex-wrap: wrap; padding: .6rem .8rem; border: 1px solid #8884; border-radius: 6px; }
  .stats strong { font-size: 1.2rem; }
  .notice { border-left: 4px solid var(--accent); padding: .4rem .8rem; }
  textarea { width: 100%; min-height: 4.5rem; font: inherit; padding: .4rem; }
  .cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1.6rem; }
  .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
`)

/** `scriptSrc`: the URL of the bundled browser/admin-page.ts. */
export function adminPage(o: { user: string; scriptSrc: string }): string {
  return layout({
    title: 'Admin', user: o.user, admin: true,
    head: html`<style>${STYLE}</style><script id="admin-config" type="application/json">${jsonForScript({ me: o.user })}</script>`,
    body: html`
<h1>Admin</h1>
<div class="stats" role="status" aria-live="polite" aria-label="Server counts">
  <span>Running <strong id="stat-running">…</strong></span>
  <span>Starting <strong id="stat-pending">…</strong></span>
  <span>Waiting for a slot <strong id="stat-queued">…</strong></span>
  <span>Stopping <strong id="stat-stopping">…</strong></span>
  <span class="muted" id="stats-error"></span>
</div>
<p id="message" role="alert" hidden></p>

<section aria-labelledby="users-h">
  <h2 id="users-h">Users</h2>
  <div class="toolbar">
    <div class="field"><label for="search">Search by name</label><input type="text" id="search" autocomplete="off" spellcheck="false" placeholder="part of a username"></div>
    <div><label for="state-filter">Server</label>
      <select id="state-filter">
        <option value="">all users</option><option value="ready">running</option><option value="active">running or starting</option><option value="inactive">not running</option>
      </select></div>
  </div>
  <div class="pager">
    <button type="button" class="secondary small" id="prev">← Previous</button>
    <span id="page-info" aria-live="polite">…</span>
    <button type="button" class="secondary small" id="next">Next →</button>
    <span class="muted" id="table-status"></span>
  </div>
  <table id="users">
    <thead><tr>
      <th><input type="checkbox" id="select-page" aria-label="Select all users on this page"></th>
      <th data-sort="name" aria-sort="ascending"><button type="button" id="sort-name">Name<span class="dir"></span></button></th>
      <th>Admin</th>
      <th>Server</th>
      <th data-sort="last_activity" aria-sort="none"><button type="button" id="sort-activity">Last activity<span class="dir"></span></button></th>
      <th>Actions</th>
    </tr></thead>
    <tbody id="users-body"></tbody>
  </table>
  <div class="toolbar" style="margin-top:.6rem">
    <span id="selection-info">No users selected</span>
    <button type="button" class="small" id="bulk-start">Start selected</button>
    <button type="button" class="small danger" id="bulk-stop">Stop selected</button>
    <button type="button" class="small secondary" id="bulk-delete">Delete selected</button>
    <button type="button" class="small secondary" id="bulk-clear">Clear selection</button>
  </div>
  <p id="bulk-progress" role="status" aria-live="polite"></p>
</section>

<div class="cols">
<section aria-labelledby="add-h">
  <h2 id="add-h">Add users</h2>
  <form id="add-form">
    <label for="add-names">Usernames, one per line or separated by commas</label>
    <textarea id="add-names" spellcheck="false"></textarea>
    <label for="add-csv">Or a CSV roster (first column username, optional <code>admin</code> column)</label>
    <input type="file" id="add-csv" accept=".csv,text/csv,text/plain">
    <label class="check"><input type="checkbox" id="add-admin"> Make them admins</label>
    <p><button type="submit" id="add-submit">Add users</button></p>
    <p id="add-result" role="status" aria-live="polite"></p>
  </form>
</section>

<section aria-labelledby="groups-h" id="groups" hidden>
  <h2 id="groups-h">Groups</h2>
  <ul id="groups-list"></ul>
  <form id="group-form" class="toolbar">
    <div class="field"><label for="group-name">New group</label><input type="text" id="group-name" autocomplete="off"></div>
    <button type="submit" class="small">Create group</button>
  </form>
  <div class="toolbar" style="margin-top:.6rem">
    <div><label for="group-select">Add the selected users to</label><select id="group-select"></select></div>
    <button type="button" class="small" id="group-add">Add to group</button>
  </div>
</section>
</div>

<section aria-labelledby="cull-h">
  <h2 id="cull-h">Idle servers</h2>
  <p><button type="button" class="secondary" id="cull-preview">Cull idle now…</button>
     <button type="button" class="danger" id="cull-confirm" hidden>Stop idle servers</button></p>
  <p id="cull-status" role="status" aria-live="polite"></p>
  <ul id="cull-preview-list"></ul>
  <h2 id="cull-log-h">Recent culls <button type="button" class="small secondary" id="cull-log-refresh">Refresh</button></h2>
  <table id="cull-log" aria-labelledby="cull-log-h">
    <thead><tr><th>When</th><th>Server</th><th>Action</th><th>Rule</th><th>Idle for</th><th>By</th></tr></thead>
    <tbody id="cull-log-body"></tbody>
  </table>
</section>
<noscript><p class="error">The admin page needs JavaScript. The REST API under /hub/api offers the same actions.</p></noscript>`,
    scriptSrc: o.scriptSrc,
  })
}
