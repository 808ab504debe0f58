/**
 * A tiny real HTTP peer that answers the hub endpoints a single-user server calls (contract §4),
 * for tests: GET /hub/api, GET /hub/api/user, POST /hub/api/oauth2/token,
 * POST /hub/api/users/<u>/activity, GET /hub/api/oauth2/authorize. Not our hub: just the wire.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'

export interface PeerIdentity { kind: 'user', name: string, scopes: string[], session_id: string | null }
export interface ActivityCall { at: number, path: string, authorization: string | undefined, body: string }
export interface PeerCall { method: string, path: string, authorization: string | undefined }

export interface HubPeer {
  readonly url: string
  readonly apiUrl: string
  readonly apiToken: string
  readonly calls: PeerCall[]
  readonly activity: ActivityCall[]
  readonly tokenExchanges: URLSearchParams[]
  /** Access tokens issued by the code exchange, oldest first. */
  readonly issued: string[]
  /** Register a token the peer will recognise on /hub/api/user. */
  addToken(token: string, identity: PeerIdentity): void
  revoke(token: string): void
  /** Answer the next `n` activity POSTs with 503. */
  failActivity(n: number): void
  close(): Promise<void>
}

function cookiesOf(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  return out
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startHubPeer(opts: { version?: string, clientId: string, redirectUri: string, apiToken?: string }): Promise<HubPeer> {
  const apiToken = opts.apiToken ?? randomBytes(16).toString('hex')
  const tokens = new Map<string, PeerIdentity>()
  const codes = new Map<string, { user: string, session: string | null }>()
  const calls: PeerCall[] = [], activity: ActivityCall[] = [], tokenExchanges: URLSearchParams[] = [], issued: string[] = []
  let failActivity = 0
  const server = createServer(async (req, res) => {
    const url = new URL(`http://x${req.url}`)
    const authorization = req.headers.authorization
    calls.push({ method: req.method!, path: url.pathname, authorization })
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-jupyterhub-version': opts.version ?? '3.0.0' }).end(JSON.stringify(body))
    }
    const bearer = /^token (.+)$/.exec(authorization ?? '')?.[1]
    if (req.method === 'GET' && url.pathname === '/hub/api') return json(200, { version: opts.version ?? '3.0.0' })
    if (req.method === 'GET' && url.pathname === '/hub/api/user') {
      const who = bearer === undefined ? undefined : tokens.get(bearer)
      return who ? json(200, who) : json(403, { status: 403, message: 'Forbidden' })
    }
    if (req.method === 'POST' && /^\/hub\/api\/users\/[^/]+\/activity$/.test(url.pathname)) {
      const body = await bodyOf(req)
      if (failActivity > 0) { failActivity--; return json(503, { status: 503, message: 'try later' }) }
      if (bearer !== apiToken) return json(403, { status: 403, message: 'Forbidden' })
      activity.push({ at: Date.now(), path: url.pathname, authorization, body })
      return res.writeHead(200, { 'content-type': 'application/json' }).end()
    }
    if (req.method === 'GET' && url.pathname === '/hub/api/oauth2/authorize') {
      const login = cookiesOf(req).get('peer-login')
      if (!login) return res.writeHead(302, { location: `/hub/login?next=${encodeURIComponent(req.url!)}` }).end()
      if (url.searchParams.get('client_id') !== opts.clientId || url.searchParams.get('redirect_uri') !== opts.redirectUri) return json(400, { status: 400, message: 'bad client' })
      const code = randomBytes(15).toString('hex')
      codes.set(code, { user: login, session: cookiesOf(req).get('jupyterhub-session-id') ?? null })
      return res.writeHead(302, { location: `${opts.redirectUri}?code=${code}&state=${url.searchParams.get('state')}` }).end()
    }
    if (req.method === 'POST' && url.pathname === '/hub/api/oauth2/token') {
      const form = new URLSearchParams(await bodyOf(req))
      tokenExchanges.push(form)
      const grant = codes.get(form.get('code') ?? '')
      codes.delete(form.get('code') ?? '') // single use
      if (bearer !== apiToken || form.get('client_secret') !== apiToken || form.get('client_id') !== opts.clientId ||
          form.get('grant_type') !== 'authorization_code' || form.get('redirect_uri') !== opts.redirectUri || !grant) {
        return json(400, { error: 'invalid_grant' })
      }
      const access = randomBytes(15).toString('hex')
      issued.push(access)
      // The peer grants the access scope of the server the client belongs to (alice's here).
      const owner = opts.clientId.replace(/^jupyterhub-user-/, '')
      tokens.set(access, { kind: 'user', name: grant.user, session_id: grant.session,
        scopes: grant.user === owner ? [`access:servers!server=${owner}/`, `read:users:name!user=${grant.user}`] : [`read:users:name!user=${grant.user}`] })
      return json(200, { access_token: access, expires_in: 1209600, token_type: 'Bearer', scope: `access:servers!server=${owner}/` })
    }
    json(404, { status: 404, message: 'Not Found' })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url, apiUrl: `${url}/hub/api`, apiToken, calls, activity, tokenExchanges, issued,
    addToken: (t, identity) => { tokens.set(t, identity) },
    revoke: t => { tokens.delete(t) },
    failActivity: n => { failActivity = n },
    close: () => new Promise(resolve => { server.close(() => resolve()); server.closeAllConnections() }),
  }
}
