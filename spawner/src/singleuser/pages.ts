/** HTML of the built-in server. Every interpolated value goes through `escapeHtml`. */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, c => ESCAPES[c])
}

function layout(title: string, body: string): string {
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n` +
    `<body>\n${body}\n</body></html>\n`
}

export interface ServerPageInfo {
  readonly user: string
  readonly serverName: string
  readonly viewer: string
  readonly host: string
  readonly port: number
  readonly pid: number
  readonly startedAt: string
  readonly prefix: string
}

export function renderServerPage(p: ServerPageInfo): string {
  const server = p.serverName === '' ? 'default server' : `server "${p.serverName}"`
  return layout(`fleethub server of ${p.user}`, [
    `<h1>fleethub server of ${escapeHtml(p.user)}</h1>`,
    `<p id="server">${escapeHtml(server)}</p>`,
    `<p id="viewer">signed in as ${escapeHtml(p.viewer)}</p>`,
    `<p id="where">pid ${p.pid} on ${escapeHtml(p.host)}:${p.port}, started ${escapeHtml(p.startedAt)}</p>`,
    `<p><a href="${escapeHtml(p.prefix)}api/status">status</a></p>`,
  ].join('\n'))
}

export function renderErrorPage(status: number, message: string): string {
  return layout(`${status}`, `<h1>${status}</h1>\n<p id="message">${escapeHtml(message)}</p>`)
}
