/** The signed-in user's home page and the error page (pages/home.routes.ts, error-handler.ts). */
import { html, raw } from '../../../core/src/html.js'
import { layout, xsrfField } from './layout.js'

export interface ServerView {
  readonly name: string
  readonly state: 'stopped' | 'pending' | 'running' | 'stopping'
  readonly url: string
  readonly lastError: string | null
  readonly lastActivity: Date | null
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
