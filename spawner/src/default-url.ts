/**
 * JupyterHub's `Spawner.default_url` (z2jh `singleuser.defaultUrl`): where a user server sends a
 * browser that opens its root, `/user/<name>/`. The server gets it as `JUPYTERHUB_DEFAULT_URL`
 * and redirects to `<prefix><default url>`. Pure, shared by the hub (its `defaultUrl` setting),
 * the Kubernetes spawner (profiles may override it) and the built-in server.
 */

/** The variable jupyterhub-singleuser reads (JupyterHub spawner.py `get_env`). */
export const DEFAULT_URL_ENV = 'JUPYTERHUB_DEFAULT_URL'

/** A `{name}` placeholder; only `{username}` is known (JupyterHub's `Spawner.format_string` namespace). */
const PLACEHOLDER = /\{([^{}]*)\}/g

/**
 * Why `value` is not a usable default URL, or undefined when it is. It must be a path inside the
 * server: starting with '/', not '//' (a host, not a path), with no backslash, whitespace or
 * control characters; a configured one (`template`, the default) has no placeholder other than
 * `{username}`, while an expanded one (what a server receives) may hold any literal braces.
 */
export function defaultUrlProblem(value: unknown, o: { template?: boolean } = {}): string | undefined {
  const shown = JSON.stringify(value)
  const expected = `expected a path starting with '/' (such as /lab or /tree), got ${shown}`
  if (typeof value !== 'string' || !value.startsWith('/')) return expected
  if (value.startsWith('//')) return `${expected}: '//' starts a host, not a path`
  if (/[\s\\\u0000-\u001f\u007f]/.test(value)) return `${expected}: no spaces, backslashes or control characters`
  if (o.template === false) return undefined
  for (const [, name] of value.matchAll(PLACEHOLDER)) {
    if (name !== 'username') return `${expected}: unknown placeholder {${name}} (only {username})`
  }
  return undefined
}

/** Python's `quote(s, safe='@~')`, as JupyterHub escapes names in URLs (hub/src/servers/url-escape.ts). */
function urlEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%40/g, '@')
}

/** `{username}` -> the user's name, escaped for a URL path (a checked `template`, see `defaultUrlProblem`). */
export function expandDefaultUrl(template: string, user: string): string {
  return template.replaceAll('{username}', urlEscape(user))
}
