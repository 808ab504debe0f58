/**
 * DOM and text helpers. Values reach the page only through textContent and attributes, never
 * innerHTML, so a hostile user or group name stays text.
 */

/** The element with this id; the page shell (admin-page.ts on the server) always renders it. */
export function $<E extends HTMLElement = HTMLElement>(id: string): E {
  const e = document.getElementById(id)
  if (!e) throw new Error(`#${id} is missing from the page`)
  return e as E
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string | number | null, attrs?: Record<string, string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (text !== undefined && text !== null) e.textContent = String(text)
  if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]!)
  return e
}

export function num(n: number): string {
  return Number(n).toLocaleString('en-US')
}

/** The page-wide message line; an empty text hides it. */
export function say(text: string, isError?: boolean): void {
  const m = $('message')
  m.textContent = text || ''
  m.className = isError ? 'error' : 'notice'
  m.hidden = !text
}

export function ago(iso: string | null): string {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  if (s < 60) return s + ' s ago'
  if (s < 3600) return Math.round(s / 60) + ' min ago'
  if (s < 86400) return Math.round(s / 3600) + ' h ago'
  return Math.round(s / 86400) + ' days ago'
}

export function duration(s: number): string {
  if (s < 120) return Math.round(s) + ' s'
  if (s < 7200) return Math.round(s / 60) + ' min'
  if (s < 172800) return Math.round(s / 3600) + ' h'
  return Math.round(s / 86400) + ' days'
}
