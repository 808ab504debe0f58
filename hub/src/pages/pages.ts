import { html, jsonForScript, raw } from '../../../core/src/html.js'
import { layout } from './layout.js'

export interface ServerView {
  readonly name: string
  readonly state: 'stopped' | 'pending' | 'running' | 'stopping'
  readonly url: string
  readonly lastError: string | null
  readonly lastActivity: Date | null
}

const xsrfField = (xsrf: string) => html`<input type="hidden" name="_xsrf" value="${xsrf}">`

export function loginPage(o: { next: string; xsrf: string; error?: string; username?: string; devPasswordHint: boolean; firstSignInHint?: boolean }): string {
  const action = `/hub/login${o.next ? `?next=${encodeURIComponent(o.next)}` : ''}`
  return layout({
    title: 'Sign in',
    body: html`
<h1>Sign in</h1>
${o.error ? html`<p class="error" role="alert" id="login-error">${o.error}</p>` : ''}
<form method="post" action="${action}">
  ${xsrfField(o.xsrf)}
  <label for="username">Username</label>
  <input type="text" id="username" name="username" value="${o.username ?? ''}" autocomplete="username" autocapitalize="none" required autofocus>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required>
  <p><button type="submit" id="login-submit">Sign in</button></p>
</form>
${o.devPasswordHint ? html`<p class="muted">Development mode: any username, with the password printed when the hub started.</p>` : ''}
${o.firstSignInHint ? html`<p class="muted" id="first-sign-in">Signing in for the first time? The password you enter now (at least 8 characters) becomes your password.</p>` : ''}`,
  })
}

/** The single sign-on login page: one button to the identity provider (a GET, as JupyterHub's oauth_login). */
export function oidcLoginPage(o: { providerName: string; loginUrl: string }): string {
  return layout({
    title: 'Sign in',
    body: html`
<h1>Sign in</h1>
<p><a class="button" id="oidc-login" href="${o.loginUrl}">Sign in with ${o.providerName}</a></p>
<p class="muted">You will be taken to ${o.providerName} to sign in, then brought back here.</p>`,
  })
}

function describe(s: ServerView): string {
  switch (s.state) {
    case 'running': return 'running'
    case 'pending': return 'starting'
    case 'stopping': return 'stopping'
    default: return 'not running'
  }
}

export interface ProfileOption { readonly slug: string; readonly displayName: string; readonly description: string; readonly default: boolean }

/** The spawner's profiles as a choice in the start form (radio buttons: accessible, no script). */
function profileChoice(profiles: readonly ProfileOption[] | undefined) {
  if (!profiles || profiles.length === 0) return ''
  return html`<fieldset id="profiles"><legend>Server options</legend>${profiles.map(p => html`
    <label><input type="radio" name="profile" value="${p.slug}"${p.default ? raw(' checked') : ''}> ${p.displayName}${p.description ? html` <span class="muted">${p.description}</span>` : ''}</label>`)}
  </fieldset>`
}

export function homePage(o: { user: string; server: ServerView; xsrf: string; admin?: boolean; profiles?: readonly ProfileOption[] }): string {
  const s = o.server
  const status = html`<p id="server-status">Your server is <strong>${describe(s)}</strong>.</p>`
  const error = s.lastError && s.state === 'stopped' ? html`<p class="error" role="alert" id="server-error">The last start failed: ${s.lastError}. Start it again below; if it keeps failing, tell your instructor what this message says.</p>` : ''
  let actions
  if (s.state === 'running') {
    actions = html`<p><a class="button" id="open-server" href="${s.url}">My server</a>
      <form class="inline" method="post" action="/hub/stop">${xsrfField(o.xsrf)}<button class="danger" id="stop" type="submit">Stop my server</button></form></p>`
  } else if (s.state === 'pending') {
    actions = html`<p><a class="button" href="/hub/spawn-pending/${encodeURIComponent(o.user)}">Show progress</a>
      <form class="inline" method="post" action="/hub/stop">${xsrfField(o.xsrf)}<button class="secondary" id="cancel" type="submit">Cancel</button></form></p>`
  } else if (s.state === 'stopping') {
    actions = html`<p class="muted">Please wait, then reload this page.</p>`
  } else {
    actions = html`<form method="post" action="/hub/spawn">${xsrfField(o.xsrf)}${profileChoice(o.profiles)}<button id="start" type="submit">Start my server</button></form>`
  }
  return layout({ title: 'Home', user: o.user, admin: o.admin, body: html`<h1>Home</h1>${status}${error}${actions}` })
}

export function spawnPendingPage(o: { user: string; progressUrl: string; next: string; serverLabel: string; xsrf: string; admin?: boolean }): string {
  // The queue position comes from the progress stream's "number N in line" events; the failure
  // reason from its last event. Text only goes in through textContent.
  const script = raw(`
(function () {
  var cfg = ${jsonForScript({ progressUrl: o.progressUrl, next: o.next }).value};
  var bar = document.getElementById('progress-bar'), msg = document.getElementById('progress-message'), log = document.getElementById('progress-log');
  var queue = document.getElementById('queue-position');
  var es = new EventSource(cfg.progressUrl), finished = false;
  es.onmessage = function (e) {
    var ev; try { ev = JSON.parse(e.data) } catch (err) { return }
    if (typeof ev.progress === 'number') { bar.value = ev.progress; bar.textContent = ev.progress + '%' }
    if (ev.message) {
      msg.textContent = ev.message;
      var li = document.createElement('li'); li.textContent = ev.message; log.appendChild(li);
      var m = /number (\\d+) in line/.exec(ev.message);
      if (m) { queue.textContent = 'Many servers are starting right now. You are number ' + m[1] + ' in line; your server starts as soon as a slot is free.'; queue.hidden = false }
      else if (ev.progress > 0) { queue.hidden = true }
    }
    if (ev.ready) { finished = true; es.close(); window.location.replace(cfg.next) }
    if (ev.failed) {
      finished = true; es.close(); queue.hidden = true;
      document.getElementById('failed-reason').textContent = (ev.message || 'The server could not start.').replace(/^Spawn failed: /, '');
      document.getElementById('failed').hidden = false; document.getElementById('pending').hidden = true;
      document.getElementById('title').textContent = 'Your server did not start';
    }
  };
  es.onerror = function () { if (es.readyState === 2 && !finished) { msg.textContent = 'Lost contact with the hub; reload the page to see how your server is doing.' } };
})();`)
  return layout({
    title: 'Starting your server', user: o.user, admin: o.admin,
    head: html`<noscript><meta http-equiv="refresh" content="3"></noscript>`,
    body: html`
<h1 id="title">Starting ${o.serverLabel}</h1>
<div id="pending">
<p>Your server is starting up. You will be taken to it when it is ready.</p>
<p id="queue-position" class="notice" role="status" hidden></p>
<progress id="progress-bar" max="100" value="0" aria-describedby="progress-message">0%</progress>
<p id="progress-message" role="status" aria-live="polite">Waiting for the hub…</p>
</div>
<div id="failed" hidden>
  <p class="error" role="alert">Your server could not start: <span id="failed-reason"></span></p>
  <form method="post" action="/hub/spawn">${xsrfField(o.xsrf)}<button type="submit" id="retry">Try again</button> <a href="/hub/home">Back to home</a></form>
</div>
<details><summary>Event log</summary><ol class="log" id="progress-log"></ol></details>
<noscript><p>This page reloads every few seconds until your server is ready.</p></noscript>`,
    script,
  })
}

export function notRunningPage(o: { user: string; owner: string; spawnUrl: string; lastError: string | null }): string {
  return layout({
    title: 'Server not running', user: o.user,
    body: html`
<h1>Server not running</h1>
<p id="not-running">The server of <strong>${o.owner}</strong> is not running.</p>
${o.lastError ? html`<p class="error">The last start failed: ${o.lastError}</p>` : ''}
${o.user === o.owner ? html`<p><a class="button" id="start" href="${o.spawnUrl}">Start my server</a> <a href="/hub/home">Home</a></p>` : ''}`,
  })
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed', 413: 'Request too large',
  424: 'Server not running', 429: 'Too many requests', 500: 'Internal error', 502: 'Bad gateway', 503: 'Service unavailable',
}

/** `requestId`: shown on a 5xx, for the user to quote when reporting it. */
export function errorPage(o: { status: number; message: string; user?: string; url?: string; requestId?: string }): string {
  const title = `${o.status} ${STATUS_TEXT[o.status] ?? 'Error'}`
  const hint = o.status === 503 && o.url
    ? html`<p>The server behind <code>${o.url}</code> is not answering. It may be starting or may have stopped; <a href="/hub/home">go home</a> to check.</p>`
    : ''
  const id = o.requestId ? html`<p class="request-id">Request id: <code>${o.requestId}</code></p>` : ''
  return layout({ title, user: o.user, body: html`<h1>${title}</h1><p id="error-message">${o.message}</p>${hint}${id}<p><a href="/hub/home">Home</a></p>` })
}
