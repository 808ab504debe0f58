import { html, raw, type SafeHtml } from '../../../core/src/html.js'

const STYLE = raw(`
  :root { color-scheme: light dark; --accent: #1f6feb; --bad: #c62828; --muted: #666; }
  * { box-sizing: border-box; }
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; }
  header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid #8884; }
  header .brand { font-weight: 700; text-decoration: none; color: inherit; }
  header nav { margin-left: auto; display: flex; gap: 1rem; align-items: center; }
  main { max-width: 46rem; margin: 2rem auto; padding: 0 1.2rem; }
  h1 { font-size: 1.5rem; }
  label { display: block; margin: .8rem 0 .2rem; font-weight: 600; }
  input[type=text], input[type=password], select { width: 100%; padding: .5rem; font: inherit; }
  button, .button { display: inline-block; padding: .55rem 1.1rem; font: inherit; border-radius: 6px; border: 1px solid var(--accent);
    background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
  button.secondary { background: transparent; color: var(--accent); }
  button.danger { background: var(--bad); border-color: var(--bad); }
  .error { color: var(--bad); border-left: 4px solid var(--bad); padding: .4rem .8rem; background: #c628281a; }
  .error:empty { display: none; }
  .muted { color: var(--muted); }
  .notice { border-left: 4px solid var(--accent); padding: .4rem .8rem; background: #1f6feb14; }
  progress { width: 100%; height: 1.4rem; }
  ol.log { font-family: ui-monospace, monospace; font-size: .9rem; }
  form.inline { display: inline; }
`)

/** The hidden form field carrying the XSRF token (auth/xsrf.ts). */
export const xsrfField = (xsrf: string) => html`<input type="hidden" name="_xsrf" value="${xsrf}">`

export interface LayoutOptions {
  readonly title: string
  readonly user?: string
  readonly body: SafeHtml
  readonly head?: SafeHtml
  readonly script?: SafeHtml
  /** A same-origin script file, loaded at the end of the body. */
  readonly scriptSrc?: string
  /** Show the link to the admin page. */
  readonly admin?: boolean
}

export function layout(o: LayoutOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} - fleethub</title>
<style>${STYLE}</style>
${o.head}
</head>
<body>
<header>
  <a class="brand" href="/hub/home">fleethub</a>
  ${o.user ? html`<nav aria-label="account"><span>Signed in as <strong>${o.user}</strong></span><a href="/hub/home">Home</a><a href="/hub/token">Token</a>${o.admin ? html`<a href="/hub/admin" id="admin-link">Admin</a>` : ''}<a href="/hub/logout">Log out</a></nav>` : ''}
</header>
<main>
${o.body}
</main>
${o.script ? html`<script>${o.script}</script>` : ''}
${o.scriptSrc ? html`<script src="${o.scriptSrc}"></script>` : ''}
</body>
</html>
`.value
}
