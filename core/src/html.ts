/**
 * Server-rendered HTML with escaping by default: every interpolated value is escaped unless it is
 * already `SafeHtml` (the result of another `html` template, or `raw()` for trusted constants).
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string { return this.value }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, c => ESCAPES[c]!)
}

function render(value: unknown): string {
  if (value === undefined || value === null || value === false) return ''
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(String(value))
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!
  return new SafeHtml(out)
}

export const raw = (s: string): SafeHtml => new SafeHtml(s)

/** JSON for a <script> block: `<` escaped so no value can close the script element. */
export function jsonForScript(value: unknown): SafeHtml {
  return new SafeHtml(JSON.stringify(value).replace(/</g, '\\u003c'))
}
