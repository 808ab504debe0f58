/**
 * Services as the REST API shows them (contract §7.2, §7.10): `GET /hub/api/user` with a service's
 * token and `GET /hub/api/services[/<name>]`, fields by the caller's scopes as JupyterHub's
 * service_model does. `roles` are the service's configured role names, seen with read:roles:services.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startTestHub } from '../../test/helpers/hub.js'

const TOKENS = {
  AUDITOR_TOKEN: 'auditor-token-0123456789abcdef',
  LIMITED_TOKEN: 'limited-token-0123456789abcdef',
  OPERATOR_TOKEN: 'operator-token-0123456789abcdef',
  NAMES_TOKEN: 'names-token-0123456789abcdef',
}

t.test('service models', async t => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-services-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const configFile = path.join(dir, 'config.json')
  await fs.writeFile(configFile, JSON.stringify({
    roles: [
      { name: 'lister', scopes: ['list:users', 'read:users:name'] },
      { name: 'role-reader', scopes: ['read:roles'] },
      { name: 'operator', scopes: ['read:services', 'read:roles:services'] },
      { name: 'names', scopes: ['list:services'] },
    ],
    services: [
      { name: 'auditor', roles: ['lister', 'role-reader'], tokenEnv: 'AUDITOR_TOKEN' },
      { name: 'limited', roles: ['lister'], tokenEnv: 'LIMITED_TOKEN' },
      { name: 'operator', roles: ['operator'], tokenEnv: 'OPERATOR_TOKEN' },
      { name: 'names', roles: ['names'], tokenEnv: 'NAMES_TOKEN' },
    ],
  }))
  const hub = await startTestHub(t, { args: ['--config', configFile], env: TOKENS })
  const get = async (p: string, token: string): Promise<{ status: number, body: any }> => {
    const res = await fetch(`${hub.publicUrl}/hub/api${p}`, { headers: { authorization: `token ${token}` } })
    return { status: res.status, body: await res.json() }
  }

  t.test('GET /hub/api/user lists the service\'s configured roles (it said [] before)', async t => {
    const { status, body } = await get('/user', TOKENS.AUDITOR_TOKEN)
    t.equal(status, 200)
    t.match(body, { kind: 'service', name: 'auditor', admin: false, session_id: null })
    t.same(body.roles, ['lister', 'role-reader'], 'the role names from config, in config order')
    t.ok(body.scopes.includes('read:roles:services') && body.scopes.includes('list:users'), 'and the scopes they grant')
  })

  t.test('without read:roles:services there is no roles field, as the contract\'s limited-svc', async t => {
    const { body } = await get('/user', TOKENS.LIMITED_TOKEN)
    t.same(body, { kind: 'service', name: 'limited', admin: false, session_id: null, scopes: ['list:users', 'read:users:name'] })
  })

  t.test('read:services shows the rest of the service model, in /user as in /services', async t => {
    const me = (await get('/user', TOKENS.OPERATOR_TOKEN)).body
    t.match(me, { kind: 'service', name: 'operator', admin: false, roles: ['operator'], url: '', prefix: '', command: [], pid: 0, info: {}, display: true })
    const one = await get('/services/limited', TOKENS.OPERATOR_TOKEN)
    t.equal(one.status, 200)
    t.same(one.body, { kind: 'service', name: 'limited', admin: false, roles: ['lister'], url: '', prefix: '', command: [], pid: 0, info: {}, display: true })
    const all = (await get('/services', TOKENS.OPERATOR_TOKEN)).body
    t.same(Object.keys(all).sort(), ['auditor', 'limited', 'names', 'operator'])
    t.same(all.auditor.roles, ['lister', 'role-reader'])
  })

  t.test('list:services alone sees names only', async t => {
    const all = await get('/services', TOKENS.NAMES_TOKEN)
    t.equal(all.status, 200)
    t.same(all.body.auditor, { kind: 'service', name: 'auditor', admin: false })
    t.equal((await get('/services', TOKENS.LIMITED_TOKEN)).status, 403, 'no service scope: refused')
  })
})
