/**
 * The admin page's one way to the REST API: JSON in and out with the session cookie. A same-origin
 * fetch sends the Referer/Origin the API requires of cookie-authenticated calls.
 */

export const PAGINATED = 'application/jupyterhub-pagination+json'

/** A non-2xx answer: the hub's message, its HTTP status and its `HUB_*` code when it sent one. */
export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly code: string | undefined) {
    super(message)
  }
}

/** The fields of JupyterHub's user model that the page reads. */
export interface ApiUser {
  readonly name: string
  readonly admin: boolean
  readonly server: string | null
  readonly pending: 'spawn' | 'stop' | null
  readonly last_activity: string | null
}

export interface ApiGroup {
  readonly name: string
  readonly users?: readonly string[]
}

/** JupyterHub's paginated list (asked for with `accept: PAGINATED`). */
export interface Paginated<T> {
  readonly items: T[]
  readonly _pagination: { readonly total: number }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, accept?: string): Promise<T> {
  const headers: Record<string, string> = { accept: accept || 'application/json' }
  const init: RequestInit = { method, credentials: 'same-origin', headers }
  if (body !== undefined) { headers['content-type'] = 'application/json'; init.body = JSON.stringify(body) }
  const res = await fetch('/hub/api' + path, init)
  const text = await res.text()
  let data: { message?: string; code?: string } | null = null
  try { data = text ? JSON.parse(text) : null } catch { data = null }
  if (!res.ok) throw new ApiError((data && data.message) || ('HTTP ' + res.status), res.status, (data && data.code) || undefined)
  return data as T
}

export function userPath(name: string): string {
  return '/users/' + encodeURIComponent(name)
}

/** The message of anything a promise rejected with. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
