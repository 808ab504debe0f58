/**
 * Reading the "add users" inputs: pasted names, and a CSV roster whose first column is the
 * username. Pure functions (no DOM), so node tests can import them.
 */

export interface RosterEntry {
  readonly name: string
  readonly admin: boolean
}

/** Names separated by whitespace, commas or semicolons. */
export function splitNames(text: string): string[] {
  return text.split(/[\s,;]+/).map(s => s.trim()).filter(Boolean)
}

function csvCells(line: string): string[] {
  return line.split(',').map(c => c.trim().replace(/^"(.*)"$/, '$1').trim())
}

// A Set, not an object literal: an admin cell reading "constructor" must not count as yes.
const TRUE = new Set(['true', 'yes', 'y', '1', 'admin', 'x'])

/** First column the username; an optional header row names an "admin" column. */
export function parseRoster(text: string): RosterEntry[] {
  let lines = text.split(/\r?\n/).filter(l => l.trim() !== '')
  let adminCol = -1
  if (lines.length && /^(user(name)?|name|login)$/i.test(csvCells(lines[0]!)[0]!)) {
    adminCol = csvCells(lines[0]!).map(c => c.toLowerCase()).indexOf('admin')
    lines = lines.slice(1)
  }
  const out: RosterEntry[] = []
  for (const l of lines) {
    const cells = csvCells(l)
    if (cells[0]) out.push({ name: cells[0], admin: adminCol >= 0 && TRUE.has((cells[adminCol] || '').toLowerCase()) })
  }
  return out
}
