/**
 * /hub/token: a user's API tokens. The page is a shell; its script lists, mints and revokes
 * through /hub/api/users/<me>/tokens with the session cookie. A new token is shown once.
 */
import { html, jsonForScript, raw } from '../../../core/src/html.js'
import { layout } from '../pages/layout.js'

const SCRIPT = String.raw`
  var cfg = JSON.parse(document.getElementById('token-config').textContent);
  var base = '/hub/api/users/' + encodeURIComponent(cfg.user) + '/tokens';
  function $(id) { return document.getElementById(id); }
  function call(method, url, body) {
    var init = { method: method, credentials: 'same-origin', headers: { accept: 'application/json' } };
    if (body) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(url, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null; try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) throw new Error((data && data.message) || ('HTTP ' + res.status));
        return data;
      });
    });
  }
  function when(iso, none) { return iso ? new Date(iso).toLocaleString() : none; }
  function cell(tr, text) { var td = document.createElement('td'); td.textContent = text; tr.appendChild(td); return td; }
  function list() {
    return call('GET', base).then(function (r) {
      var body = $('tokens-body'); body.textContent = '';
      var mine = r.api_tokens.filter(function (t) { return t.oauth_client === 'JupyterHub'; });
      mine.forEach(function (t) {
        var tr = document.createElement('tr'); tr.setAttribute('data-token', t.id);
        cell(tr, t.note || '(no note)'); cell(tr, when(t.created, '')); cell(tr, when(t.last_activity, 'never')); cell(tr, when(t.expires_at, 'never'));
        var b = document.createElement('button'); b.type = 'button'; b.className = 'danger small'; b.textContent = 'Revoke';
        b.setAttribute('aria-label', 'Revoke ' + (t.note || t.id));
        b.addEventListener('click', function () {
          b.disabled = true;
          call('DELETE', base + '/' + encodeURIComponent(t.id)).then(list, function (err) { $('token-error').textContent = 'Could not revoke: ' + err.message; b.disabled = false; });
        });
        cell(tr, '').appendChild(b);
        body.appendChild(tr);
      });
      if (mine.length === 0) { var tr = document.createElement('tr'); cell(tr, 'You have no API tokens.').colSpan = 5; body.appendChild(tr); }
    }, function (err) { $('token-error').textContent = 'Could not list your tokens: ' + err.message; });
  }
  $('token-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('token-error').textContent = '';
    var body = { note: $('token-note').value.trim() || undefined };
    var days = Number($('token-expires').value);
    if (days > 0) body.expires_in = days * 86400;
    call('POST', base, body).then(function (t) {
      $('new-token').value = t.token; $('new-token-box').hidden = false; $('token-note').value = '';
      $('new-token').focus(); $('new-token').select();
      return list();
    }, function (err) { $('token-error').textContent = 'Could not create a token: ' + err.message; });
  });
  list();
`

export function tokenPage(o: { user: string; admin?: boolean }): string {
  return layout({
    title: 'API tokens', user: o.user, admin: o.admin,
    head: html`<script id="token-config" type="application/json">${jsonForScript({ user: o.user })}</script>
<style>table { width: 100%; border-collapse: collapse; } th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid #8883; }
button.small { padding: .2rem .6rem; font-size: .85rem; } #new-token { font-family: ui-monospace, monospace; width: 100%; padding: .5rem; }</style>`,
    body: html`
<h1>API tokens</h1>
<p>A token lets scripts and tools act as you through the hub's REST API (send it as <code>Authorization: token …</code>).</p>
<form id="token-form">
  <label for="token-note">What is it for?</label>
  <input type="text" id="token-note" maxlength="1000" placeholder="e.g. grading script">
  <label for="token-expires">Expires</label>
  <select id="token-expires"><option value="1">in 1 day</option><option value="7">in 7 days</option><option value="30" selected>in 30 days</option><option value="0">never</option></select>
  <p><button type="submit" id="token-request">Request new API token</button></p>
</form>
<div id="new-token-box" hidden>
  <p class="notice" role="status">Your new token. Copy it now: it is shown only once.</p>
  <input type="text" id="new-token" readonly aria-label="Your new API token">
</div>
<p class="error" id="token-error" role="alert" aria-live="assertive"></p>
<h2>Your tokens</h2>
<table><thead><tr><th>Note</th><th>Created</th><th>Last used</th><th>Expires</th><th></th></tr></thead><tbody id="tokens-body"></tbody></table>
<noscript><p class="error">This page needs JavaScript; the REST API under /hub/api offers the same.</p></noscript>`,
    script: raw(`(function () {${SCRIPT}})();`),
  })
}
