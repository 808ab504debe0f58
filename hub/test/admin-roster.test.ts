/**
 * The admin page's "Add users" parsing (hub/src/admin/browser/roster.ts): pure functions, so they
 * run here in Node; the browser test covers the form end to end.
 */
import t from 'tap'
import { parseRoster, splitNames } from '../src/admin/browser/roster.js'

t.test('pasted names split on whitespace, commas and semicolons', async t => {
  t.same(splitNames(' alice, bob\ncarol;dave\t\teve,,'), ['alice', 'bob', 'carol', 'dave', 'eve'])
  t.same(splitNames('  \n '), [])
})

t.test('a CSV roster: first column the name, an optional header naming an admin column', async t => {
  t.same(parseRoster('username,admin\nta-anna,yes\nstudent00001,\n"rostered1",no\n\n'), [
    { name: 'ta-anna', admin: true }, { name: 'student00001', admin: false }, { name: 'rostered1', admin: false },
  ])
  t.same(parseRoster('Login,Email,Admin\r\nx1,x1@uni.edu,X\r\nx2,x2@uni.edu,0'), [{ name: 'x1', admin: true }, { name: 'x2', admin: false }])
  t.same(parseRoster('alice,admin\nbob,yes'), [{ name: 'alice', admin: false }, { name: 'bob', admin: false }], 'no header row: no admin column')
  t.same(parseRoster('name\ncarol'), [{ name: 'carol', admin: false }], 'a header without an admin column')
})

t.test('an admin cell naming an Object.prototype key is not a yes', async t => {
  t.same(parseRoster('username,admin\nmallory,constructor\neve,toString'), [{ name: 'mallory', admin: false }, { name: 'eve', admin: false }])
})
