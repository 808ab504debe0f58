/**
 * The "Add users" form: pasted names plus an optional CSV roster, sent 1,000 names per
 * POST /hub/api/users (admins and non-admins in separate calls). Names that already exist count
 * as such, not as failures.
 */
import { api, messageOf, type ApiUser } from './api.js'
import { $ } from './dom.js'
import { parseRoster, splitNames, type RosterEntry } from './roster.js'

const CHUNK = 1000
const MAX_ROSTER_BYTES = 5 * 1024 * 1024

/** Reads the form, adds the users, then calls `reload` (the user table) and clears the inputs. */
export async function submitAddForm(reload: () => void): Promise<void> {
  const namesField = $<HTMLTextAreaElement>('add-names'), csv = $<HTMLInputElement>('add-csv'), result = $('add-result')
  const names: RosterEntry[] = splitNames(namesField.value).map(n => ({ name: n, admin: false }))
  const file = csv.files?.[0]
  let entries = names
  if (file) {
    if (file.size > MAX_ROSTER_BYTES) { result.textContent = 'The roster file is larger than 5 MB.'; result.className = 'error'; return }
    entries = names.concat(parseRoster(await file.text()))
  }
  await addUsers(entries, $<HTMLInputElement>('add-admin').checked, reload)
  namesField.value = ''; csv.value = ''
}

async function addUsers(entries: readonly RosterEntry[], allAdmin: boolean, reload: () => void): Promise<void> {
  const admins: string[] = [], others: string[] = []
  for (const e of entries) (allAdmin || e.admin ? admins : others).push(e.name.toLowerCase())
  const result = $('add-result')
  const chunks: { usernames: string[]; admin: boolean }[] = []
  for (const [names, admin] of [[admins, true], [others, false]] as const) {
    for (let i = 0; i < names.length; i += CHUNK) chunks.push({ usernames: names.slice(i, i + CHUNK), admin })
  }
  if (chunks.length === 0) { result.textContent = 'Enter at least one username.'; result.className = 'error'; return }
  result.className = ''; result.textContent = 'Adding…'
  let created = 0, existed = 0
  try {
    for (const c of chunks) {
      try {
        const made = await api<ApiUser[]>('POST', '/users', c)
        created += made.length; existed += new Set(c.usernames).size - made.length
      } catch (err) {
        if ((err as { code?: string }).code !== 'HUB_USERS_EXIST') throw err
        existed += new Set(c.usernames).size
      }
    }
    result.textContent = 'Added ' + created + ' user' + (created === 1 ? '' : 's') + (existed ? ' (' + existed + ' already existed)' : '') + '.'
  } catch (err) {
    result.className = 'error'; result.textContent = 'Could not add users: ' + messageOf(err) + (created ? ' (' + created + ' were added before the error)' : '')
  }
  reload()
}
