/** The sign-in pages (auth/login.routes.ts): the password form, or one button to the identity provider. */
import { html } from '../../../core/src/html.js'
import { layout, xsrfField } from '../pages/layout.js'

export function loginPage(o: { next: string; xsrf: string; error?: string; username?: string; devPasswordHint: boolean; firstSignInHint?: boolean }): string {
  const action = `/hub/login${o.next ? `?next=${encodeURIComponent(o.next)}` : ''}`
  return layout({
    title: 'Sign in',
    body: html`
<h1>Sign in</h1>
${o.error ? html`<p class="error" role="alert" id="login-error">${o.error}</p>` : ''}
<form method="post" action="${action}">
  ${xsrfField(o.xsrf)}
  <label for="username">Username</label>
  <input type="text" id="username" name="username" value="${o.username ?? ''}" autocomplete="username" autocapitalize="none" required autofocus>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required>
  <p><button type="submit" id="login-submit">Sign in</button></p>
</form>
${o.devPasswordHint ? html`<p class="muted">Development mode: any username, with the password printed when the hub started.</p>` : ''}
${o.firstSignInHint ? html`<p class="muted" id="first-sign-in">Signing in for the first time? The password you enter now (at least 8 characters) becomes your password.</p>` : ''}`,
  })
}

/** The single sign-on login page: one button to the identity provider (a GET, as JupyterHub's oauth_login). */
export function oidcLoginPage(o: { providerName: string; loginUrl: string }): string {
  return layout({
    title: 'Sign in',
    body: html`
<h1>Sign in</h1>
<p><a class="button" id="oidc-login" href="${o.loginUrl}">Sign in with ${o.providerName}</a></p>
<p class="muted">You will be taken to ${o.providerName} to sign in, then brought back here.</p>`,
  })
}
