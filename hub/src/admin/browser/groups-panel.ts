/**
 * The groups panel: the list with member counts, "Create group", and "Add the selected users to".
 * It stays hidden when the hub answers 404 for /groups.
 */
import { api, messageOf, PAGINATED, type ApiGroup, type Paginated } from './api.js'
import { $, el, say } from './dom.js'

export async function loadGroups(): Promise<void> {
  let page: Paginated<ApiGroup>
  try { page = await api<Paginated<ApiGroup>>('GET', '/groups?limit=200', undefined, PAGINATED) } catch (err) {
    if ((err as { status?: number }).status === 404) { $('groups').hidden = true; return }
    say('Could not load groups: ' + messageOf(err), true)
    return
  }
  const list = $('groups-list'), pick = $('group-select')
  list.textContent = ''; pick.textContent = ''
  for (const g of page.items) {
    const n = Array.isArray(g.users) ? g.users.length : 0
    list.appendChild(el('li', g.name + ' (' + n + ' member' + (n === 1 ? '' : 's') + ')'))
    pick.appendChild(el('option', g.name, { value: g.name }))
  }
  if (page.items.length === 0) list.appendChild(el('li', 'No groups yet.'))
  $('groups').hidden = false
}

export async function createGroup(): Promise<void> {
  const field = $<HTMLInputElement>('group-name'), name = field.value.trim()
  if (!name) return
  try {
    await api('POST', '/groups', { groups: [name] })
    field.value = ''; say('Created group ' + name + '.')
  } catch (err) { say('Could not create group ' + name + ': ' + messageOf(err), true) }
  await loadGroups()
}

export async function addToGroup(names: readonly string[]): Promise<void> {
  const g = $<HTMLSelectElement>('group-select').value
  if (!g) { say('Create a group first.', true); return }
  try {
    await api('POST', '/groups/' + encodeURIComponent(g) + '/users', { users: names })
    say('Added ' + names.length + ' user' + (names.length === 1 ? '' : 's') + ' to ' + g + '.')
  } catch (err) { say('Could not add to ' + g + ': ' + messageOf(err), true) }
  await loadGroups()
}
