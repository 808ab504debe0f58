/** Python's `quote(s, safe='@~')`, which JupyterHub uses for names in URLs and client ids. */
export function urlEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%40/g, '@')
}
