/**
 * Hub usernames: lowercase, so they are safe in URLs, routes, pod names and file names without
 * escaping. Every authenticator normalizes and checks a name with these before it signs anyone in.
 */
export const USERNAME_RULE = /^[a-z0-9][a-z0-9._-]{0,63}$/

export function normalizeUsername(raw: string): string {
  return raw.trim().toLowerCase()
}

/** Why `name` cannot be a hub username, or undefined when it can. */
export function checkUsername(name: string): string | undefined {
  if (name === '') return 'Enter a username.'
  if (!USERNAME_RULE.test(name)) {
    return 'Usernames are 1-64 characters: lowercase letters, digits, and . _ - (starting with a letter or digit).'
  }
  return undefined
}
