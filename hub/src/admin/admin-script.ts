/**
 * The admin page's browser code, served as /hub/admin/admin.js. Plain ES2017 without a build
 * step. Why a string: tsconfig has no DOM lib and dist/ only holds compiled .ts, so shipping it
 * as a constant keeps one artifact. It never renders data with innerHTML: every value reaches the
 * DOM through textContent or attributes. Every state change goes through the REST API with the
 * session cookie; same-origin fetch sends the Referer/Origin the API requires.
 */
export const ADMIN_SCRIPT = String.raw`(function () {
  'use strict';
  var PAGE = 50, CONCURRENCY = 10, STATS_EVERY_MS = 4000, SEARCH_DEBOUNCE_MS = 300;
  var PAGINATED = 'application/jupyterhub-pagination+json';
  var cfg = JSON.parse(document.getElementById('admin-config').textContent);
  var view = { offset: 0, sort: 'name', filter: '', state: '', total: 0, users: [] };
  var selected = new Set();
  var loadSeq = 0, pendingTimer = 0, pendingRounds = 0;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function say(text, isError) {
    var m = $('message');
    m.textContent = text || '';
    m.className = isError ? 'error' : 'notice';
    m.hidden = !text;
  }

  /** One REST call: JSON in and out; a non-2xx answer rejects with the hub's message and code. */
  function api(method, path, body, accept) {
    var init = { method: method, credentials: 'same-origin', headers: { accept: accept || 'application/json' } };
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch('/hub/api' + path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var err = new Error((data && data.message) || ('HTTP ' + res.status));
          err.status = res.status; err.code = data && data.code;
          throw err;
        }
        return data;
      });
    });
  }
  function userPath(name) { return '/users/' + encodeURIComponent(name); }

  function serverState(u) {
    if (u.pending === 'spawn') return 'starting';
    if (u.pending === 'stop') return 'stopping';
    if (u.server) return 'running';
    return 'stopped';
  }
  function ago(iso) {
    if (!iso) return 'never';
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' days ago';
  }
  function duration(s) {
    if (s < 120) return Math.round(s) + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' days';
  }

  // ---- the user table, one page of 50 from GET /hub/api/users ----
  function load() {
    var seq = ++loadSeq;
    var q = new URLSearchParams({ offset: String(view.offset), limit: String(PAGE), sort: view.sort });
    if (view.filter) q.set('name_filter', view.filter);
    if (view.state) q.set('state', view.state);
    $('table-status').textContent = 'Loading…';
    return api('GET', '/users?' + q.toString(), undefined, PAGINATED).then(function (page) {
      if (seq !== loadSeq) return; // a newer query superseded this one
      view.total = page._pagination.total;
      view.users = page.items;
      if (view.offset > 0 && view.offset >= view.total) { view.offset = Math.max(0, Math.floor((view.total - 1) / PAGE) * PAGE); return load(); }
      render();
      $('table-status').textContent = '';
      schedulePendingRefresh();
    }, function (err) {
      if (seq !== loadSeq) return;
      $('table-status').textContent = '';
      say('Could not load users: ' + err.message, true);
    });
  }

  /** While a visible server is starting or stopping, refresh the page now and then (bounded). */
  function schedulePendingRefresh() {
    clearTimeout(pendingTimer);
    var busy = view.users.some(function (u) { return u.pending; });
    if (!busy) { pendingRounds = 0; return; }
    if (++pendingRounds > 60) return;
    pendingTimer = setTimeout(load, 1500);
  }

  function actionButton(label, cls, onClick, name) {
    var b = el('button', label, { type: 'button', class: cls, 'aria-label': label + ' ' + name });
    b.addEventListener('click', function () { b.disabled = true; onClick().then(function () { b.disabled = false; }); });
    return b;
  }

  function renderRow(u) {
    var tr = el('tr', null, { 'data-user': u.name });
    var box = el('input', null, { type: 'checkbox', 'aria-label': 'Select ' + u.name, class: 'select-user' });
    box.checked = selected.has(u.name);
    box.addEventListener('change', function () { if (box.checked) selected.add(u.name); else selected.delete(u.name); renderSelection(); });
    var c0 = el('td'); c0.appendChild(box); tr.appendChild(c0);
    tr.appendChild(el('td', u.name, { class: 'name' }));
    tr.appendChild(el('td', u.admin ? 'admin' : '', { class: 'admin' }));
    var st = serverState(u);
    tr.appendChild(el('td', st, { class: 'state state-' + st }));
    tr.appendChild(el('td', ago(u.last_activity), { class: 'activity', title: u.last_activity || '' }));
    var actions = el('td', null, { class: 'actions' });
    if (st === 'stopped') actions.appendChild(actionButton('Start', 'small', function () { return act(startServer, u.name, 'Started'); }, u.name));
    else if (st === 'running' || st === 'starting') actions.appendChild(actionButton('Stop', 'small danger', function () { return act(stopServer, u.name, 'Stopped'); }, u.name));
    actions.appendChild(actionButton(u.admin ? 'Remove admin' : 'Make admin', 'small secondary', function () { return act(function (n) { return setAdmin(n, !u.admin); }, u.name, u.admin ? 'Removed admin from' : 'Made admin:'); }, u.name));
    if (u.name !== cfg.me) {
      actions.appendChild(actionButton('Delete', 'small secondary', function () {
        if (!window.confirm('Delete user ' + u.name + '? Their server is stopped first.')) return Promise.resolve();
        return act(deleteUser, u.name, 'Deleted');
      }, u.name));
    }
    tr.appendChild(actions);
    return tr;
  }

  function render() {
    var body = $('users-body');
    body.textContent = '';
    if (view.users.length === 0) {
      var tr = el('tr'); tr.appendChild(el('td', view.filter || view.state ? 'No user matches.' : 'No users yet.', { colspan: '6' })); body.appendChild(tr);
    }
    view.users.forEach(function (u) { body.appendChild(renderRow(u)); });
    var first = view.total === 0 ? 0 : view.offset + 1, last = view.offset + view.users.length;
    $('page-info').textContent = num(first) + '–' + num(last) + ' of ' + num(view.total);
    $('prev').disabled = view.offset === 0;
    $('next').disabled = last >= view.total;
    document.querySelectorAll('th[data-sort]').forEach(function (th) {
      var key = th.getAttribute('data-sort');
      var dir = view.sort === key ? 'ascending' : view.sort === '-' + key ? 'descending' : 'none';
      th.setAttribute('aria-sort', dir);
      th.querySelector('.dir').textContent = dir === 'ascending' ? ' ▲' : dir === 'descending' ? ' ▼' : '';
    });
    $('select-page').checked = view.users.length > 0 && view.users.every(function (u) { return selected.has(u.name); });
    renderSelection();
  }

  function renderSelection() {
    var n = selected.size;
    $('selection-info').textContent = n === 0 ? 'No users selected' : n + ' selected';
    ['bulk-start', 'bulk-stop', 'bulk-delete', 'bulk-clear', 'group-add'].forEach(function (id) { $(id).disabled = n === 0; });
  }

  // ---- actions ----
  function startServer(name) { return api('POST', userPath(name) + '/server'); }
  function stopServer(name) { return api('DELETE', userPath(name) + '/server'); }
  function setAdmin(name, admin) { return api('PATCH', userPath(name), { admin: admin }); }
  function deleteUser(name) { return api('DELETE', userPath(name)).then(function () { selected.delete(name); }); }

  function act(fn, name, done) {
    say('');
    return fn(name).then(function () { say(done + ' ' + name + '.'); }, function (err) { say(name + ': ' + err.message, true); })
      .then(function () { load(); refreshStats(); });
  }

  /** Run fn over names, CONCURRENCY at a time, with progress text; failures are listed, not fatal. */
  function runBulk(label, names, fn) {
    var out = $('bulk-progress'), i = 0, ok = 0, failed = [];
    var show = function () { out.textContent = label + ': ' + (ok + failed.length) + ' of ' + names.length + ' done' + (failed.length ? ', ' + failed.length + ' failed' : ''); };
    show();
    function worker() {
      if (i >= names.length) return Promise.resolve();
      var name = names[i++];
      return fn(name).then(function () { ok++; }, function (err) { failed.push(name + ': ' + err.message); }).then(function () { show(); return worker(); });
    }
    var workers = [];
    for (var k = 0; k < Math.min(CONCURRENCY, names.length); k++) workers.push(worker());
    setBulkDisabled(true);
    return Promise.all(workers).then(function () {
      out.textContent = label + ': ' + ok + ' of ' + names.length + ' succeeded' + (failed.length ? '. Failed: ' + failed.slice(0, 5).join('; ') + (failed.length > 5 ? '; …' : '') : '.');
      setBulkDisabled(false);
      load(); refreshStats();
    });
  }
  function setBulkDisabled(d) { ['bulk-start', 'bulk-stop', 'bulk-delete'].forEach(function (id) { $(id).disabled = d || selected.size === 0; }); }
  function selectedNames() { return Array.from(selected).sort(); }

  // ---- adding users: pasted names or a CSV roster ----
  function splitNames(text) { return text.split(/[\s,;]+/).map(function (s) { return s.trim(); }).filter(Boolean); }
  function csvCells(line) { return line.split(',').map(function (c) { return c.trim().replace(/^"(.*)"$/, '$1').trim(); }); }
  var TRUE = { 'true': 1, 'yes': 1, 'y': 1, '1': 1, 'admin': 1, 'x': 1 };
  /** First column the username; an optional header row names an "admin" column. */
  function parseRoster(text) {
    var lines = text.split(/\r?\n/).filter(function (l) { return l.trim() !== ''; });
    var adminCol = -1, out = [];
    if (lines.length && /^(user(name)?|name|login)$/i.test(csvCells(lines[0])[0])) {
      adminCol = csvCells(lines[0]).map(function (c) { return c.toLowerCase(); }).indexOf('admin');
      lines = lines.slice(1);
    }
    lines.forEach(function (l) {
      var cells = csvCells(l);
      if (cells[0]) out.push({ name: cells[0], admin: adminCol >= 0 && !!TRUE[(cells[adminCol] || '').toLowerCase()] });
    });
    return out;
  }

  function addUsers(entries, allAdmin) {
    var admins = [], others = [];
    entries.forEach(function (e) { (allAdmin || e.admin ? admins : others).push(e.name.toLowerCase()); });
    var result = $('add-result'), created = 0, existed = 0;
    var chunks = [];
    [[admins, true], [others, false]].forEach(function (p) {
      for (var i = 0; i < p[0].length; i += 1000) chunks.push({ usernames: p[0].slice(i, i + 1000), admin: p[1] });
    });
    if (chunks.length === 0) { result.textContent = 'Enter at least one username.'; result.className = 'error'; return Promise.resolve(); }
    result.className = ''; result.textContent = 'Adding…';
    return chunks.reduce(function (prev, c) {
      return prev.then(function () {
        return api('POST', '/users', c).then(function (made) { created += made.length; existed += new Set(c.usernames).size - made.length; }, function (err) {
          if (err.code === 'HUB_USERS_EXIST') { existed += new Set(c.usernames).size; return; }
          throw err;
        });
      });
    }, Promise.resolve()).then(function () {
      result.textContent = 'Added ' + created + ' user' + (created === 1 ? '' : 's') + (existed ? ' (' + existed + ' already existed)' : '') + '.';
      load();
    }, function (err) { result.className = 'error'; result.textContent = 'Could not add users: ' + err.message + (created ? ' (' + created + ' were added before the error)' : ''); load(); });
  }

  // ---- groups ----
  function loadGroups() {
    return api('GET', '/groups?limit=200', undefined, PAGINATED).then(function (page) {
      var list = $('groups-list'), pick = $('group-select');
      list.textContent = ''; pick.textContent = '';
      page.items.forEach(function (g) {
        var n = Array.isArray(g.users) ? g.users.length : 0;
        list.appendChild(el('li', g.name + ' (' + n + ' member' + (n === 1 ? '' : 's') + ')'));
        pick.appendChild(el('option', g.name, { value: g.name }));
      });
      if (page.items.length === 0) list.appendChild(el('li', 'No groups yet.'));
      $('groups').hidden = false;
    }, function (err) {
      if (err.status === 404) { $('groups').hidden = true; return; }
      say('Could not load groups: ' + err.message, true);
    });
  }

  // ---- culler: preview, then confirm; and its log ----
  var previewed = 0;
  function previewCull() {
    var out = $('cull-preview-list'), status = $('cull-status');
    status.textContent = 'Looking for idle servers…'; out.textContent = ''; $('cull-confirm').hidden = true;
    return api('POST', '/cull', { dry_run: true }).then(function (r) {
      previewed = r.servers.length;
      r.servers.forEach(function (s) {
        out.appendChild(el('li', s.user + (s.server ? '/' + s.server : '') + ': idle ' + duration(s.idle_seconds) + ' (' + s.rule + ')'));
      });
      status.textContent = previewed === 0 ? 'No server is idle past the timeout; nothing to cull.' : previewed + ' server' + (previewed === 1 ? '' : 's') + ' would be stopped:';
      $('cull-confirm').textContent = 'Stop ' + previewed + ' idle server' + (previewed === 1 ? '' : 's');
      $('cull-confirm').hidden = previewed === 0;
    }, function (err) { status.textContent = 'Preview failed: ' + err.message; });
  }
  function runCull() {
    var status = $('cull-status');
    $('cull-confirm').hidden = true; status.textContent = 'Culling…';
    return api('POST', '/cull', {}).then(function (r) {
      status.textContent = 'Cull done: ' + r.stopped + ' stopped, ' + r.skipped + ' skipped' + (r.users_deleted ? ', ' + r.users_deleted + ' users deleted' : '') + '.';
      $('cull-preview-list').textContent = '';
    }, function (err) { status.textContent = 'Cull failed: ' + err.message; })
      .then(function () { loadCullLog(); load(); refreshStats(); });
  }
  function loadCullLog() {
    return api('GET', '/cull/events?limit=20').then(function (r) {
      var body = $('cull-log-body');
      body.textContent = '';
      r.events.forEach(function (e) {
        var tr = el('tr');
        tr.appendChild(el('td', e.at ? new Date(e.at).toLocaleString() : '', { title: e.at || '' }));
        tr.appendChild(el('td', e.user + (e.server ? '/' + e.server : '')));
        tr.appendChild(el('td', e.action + (e.dry_run ? ' (preview)' : '')));
        tr.appendChild(el('td', e.rule));
        tr.appendChild(el('td', e.idle_seconds === null || e.idle_seconds === undefined ? '' : duration(e.idle_seconds)));
        tr.appendChild(el('td', e.by));
        body.appendChild(tr);
      });
      if (r.events.length === 0) { var tr = el('tr'); tr.appendChild(el('td', 'Nothing culled yet.', { colspan: '6' })); body.appendChild(tr); }
    }, function (err) { $('cull-status').textContent = 'Could not read the cull log: ' + err.message; });
  }

  // ---- live counts ----
  var statsTimer = 0, statsTicks = 0;
  function refreshStats() {
    return fetch('/hub/admin/stats', { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (s) {
        $('stat-running').textContent = num(s.running);
        $('stat-pending').textContent = num(s.pending);
        $('stat-queued').textContent = num(s.queued);
        $('stat-stopping').textContent = num(s.stopping);
        $('stats-error').textContent = '';
      }, function (err) { $('stats-error').textContent = '(counts unavailable: ' + err.message + ')'; });
  }
  function pollStats() {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(function () {
      if (document.hidden) return pollStats();
      refreshStats().then(function () { if (++statsTicks % 4 === 0) loadCullLog(); pollStats(); });
    }, STATS_EVERY_MS);
  }

  // ---- wiring ----
  var searchTimer = 0;
  $('search').addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { view.filter = $('search').value.trim(); view.offset = 0; load(); }, SEARCH_DEBOUNCE_MS);
  });
  $('state-filter').addEventListener('change', function () { view.state = $('state-filter').value; view.offset = 0; load(); });
  document.querySelectorAll('th[data-sort] button').forEach(function (b) {
    b.addEventListener('click', function () {
      var key = b.parentNode.getAttribute('data-sort');
      view.sort = view.sort === key ? '-' + key : key;
      view.offset = 0; load();
    });
  });
  $('prev').addEventListener('click', function () { view.offset = Math.max(0, view.offset - PAGE); load(); });
  $('next').addEventListener('click', function () { view.offset += PAGE; load(); });
  $('select-page').addEventListener('change', function () {
    var on = $('select-page').checked;
    view.users.forEach(function (u) { if (on) selected.add(u.name); else selected.delete(u.name); });
    render();
  });
  $('bulk-clear').addEventListener('click', function () { selected.clear(); render(); });
  $('bulk-start').addEventListener('click', function () { runBulk('Starting', selectedNames(), startServer); });
  $('bulk-stop').addEventListener('click', function () { runBulk('Stopping', selectedNames(), stopServer); });
  $('bulk-delete').addEventListener('click', function () {
    var names = selectedNames().filter(function (n) { return n !== cfg.me; });
    if (!window.confirm('Delete ' + names.length + ' users? Their servers are stopped first.')) return;
    runBulk('Deleting', names, deleteUser);
  });
  $('add-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var names = splitNames($('add-names').value).map(function (n) { return { name: n, admin: false }; });
    var file = $('add-csv').files[0];
    var go = function (entries) { return addUsers(entries, $('add-admin').checked).then(function () { $('add-names').value = ''; $('add-csv').value = ''; }); };
    if (!file) return go(names);
    if (file.size > 5 * 1024 * 1024) { $('add-result').textContent = 'The roster file is larger than 5 MB.'; $('add-result').className = 'error'; return; }
    file.text().then(function (text) { return go(names.concat(parseRoster(text))); });
  });
  $('group-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var name = $('group-name').value.trim();
    if (!name) return;
    api('POST', '/groups', { groups: [name] }).then(function () { $('group-name').value = ''; say('Created group ' + name + '.'); }, function (err) { say('Could not create group ' + name + ': ' + err.message, true); }).then(loadGroups);
  });
  $('group-add').addEventListener('click', function () {
    var g = $('group-select').value, names = selectedNames();
    if (!g) { say('Create a group first.', true); return; }
    api('POST', '/groups/' + encodeURIComponent(g) + '/users', { users: names })
      .then(function () { say('Added ' + names.length + ' user' + (names.length === 1 ? '' : 's') + ' to ' + g + '.'); }, function (err) { say('Could not add to ' + g + ': ' + err.message, true); })
      .then(loadGroups);
  });
  $('cull-preview').addEventListener('click', previewCull);
  $('cull-confirm').addEventListener('click', runCull);
  $('cull-log-refresh').addEventListener('click', loadCullLog);

  load(); loadGroups(); loadCullLog(); refreshStats(); pollStats();
})();
`
