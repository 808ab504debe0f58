/** The pages of a server that is starting (the progress page) or not running (servers/spawn.routes.ts, not-running.routes.ts). */
import { html, jsonForScript, raw } from '../../../core/src/html.js'
import { layout, xsrfField } from '../pages/layout.js'

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
