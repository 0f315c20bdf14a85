// Who is signed in. The access token lives in this module's memory only: never in localStorage,
// sessionStorage or a cookie, so it leaves with the tab (a reload signs in again; with a session at
// the identity provider that is one redirect, without typing anything).

let current = null // { token, me, expiresAt }
let expiryTimer
const listeners = new Set()

export const apiBase = new URL('../', new URL('./', window.location.href))

export function session() {
  return current
}

export function onSessionChange(listener) {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

function emit(reason) {
  for (const listener of listeners) listener(current, reason)
}

export function bearer() {
  return current?.token
}

/** Checks the token with GET /v1/me (who Regent takes us to be) and keeps both in memory. */
export async function signInWithToken(token, expiresInSeconds) {
  const res = await fetch(new URL('v1/me', apiBase), { headers: { authorization: `Bearer ${token}` } })
  if (!res.ok) {
    const body = await res.json().catch(() => null)
    throw new Error(
      body?.error ? `${body.error.code}: ${body.error.message}` : `sign-in failed (${res.status})`,
    )
  }
  const me = await res.json()
  const expiresAt = expiresInSeconds ? Date.now() + expiresInSeconds * 1000 : expiryOf(token)
  current = { token, me, expiresAt }
  clearTimeout(expiryTimer)
  if (expiresAt) {
    const wait = Math.max(0, expiresAt - Date.now())
    // setTimeout holds at most ~24.8 days; a token lasting longer is simply kept.
    if (wait < 2 ** 31) expiryTimer = setTimeout(() => signOut('expired'), wait)
  }
  emit('signed-in')
  return me
}

export function signOut(reason = 'signed-out') {
  clearTimeout(expiryTimer)
  current = null
  emit(reason)
}

/** The `exp` of a JWT, in ms; undefined when the token is not a readable JWT. */
function expiryOf(token) {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined
  } catch {
    return undefined
  }
}

// --- OpenID Connect: authorization code flow with PKCE, as a public client ---------------------
//
// The verifier, state and nonce must survive the redirect to the identity provider and back, so
// they are kept in sessionStorage for that one round trip and removed as soon as the callback
// reads them. They are single-use and useless without the provider's answer; the token itself is
// never stored.

const PENDING = 'regent.oidc.pending'

function base64url(bytes) {
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)))
}

async function discover(issuer) {
  const base = issuer.replace(/\/$/, '')
  const res = await fetch(`${base}/.well-known/openid-configuration`)
  if (!res.ok) throw new Error(`the identity provider's discovery document answered ${res.status}`)
  const doc = await res.json()
  if (doc.issuer.replace(/\/$/, '') !== base)
    throw new Error(`the identity provider names itself ${doc.issuer}`)
  return doc
}

function redirectUri() {
  return new URL('./', window.location.href).href.split('#')[0].split('?')[0]
}

/** Sends the browser to the identity provider; it comes back to /ui/ with a code. */
export async function beginOidcSignIn(oidc, returnTo) {
  const doc = await discover(oidc.issuer)
  const verifier = randomString()
  const state = randomString()
  const nonce = randomString()
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  )
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo }))
  const url = new URL(doc.authorization_endpoint)
  const params = {
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scopes,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(oidc.audience ? { audience: oidc.audience } : {}),
    ...(oidc.resource ? { resource: oidc.resource } : {}),
  }
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value)
  window.location.assign(url.href)
}

/** Whether this page load is the identity provider's redirect back to us. */
export function isOidcCallback() {
  const params = new URLSearchParams(window.location.search)
  return params.has('state') && (params.has('code') || params.has('error'))
}

/**
 * Completes the sign-in: checks `state`, trades the code and the PKCE verifier for tokens at the
 * token endpoint, checks the ID token's nonce and audience, and signs in with the access token
 * (Regent verifies its signature against the provider's keys). Returns where to go next.
 */
export async function completeOidcSignIn(oidc) {
  const params = new URLSearchParams(window.location.search)
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null')
  sessionStorage.removeItem(PENDING)
  // The code must not linger in the address bar or the history.
  window.history.replaceState(null, '', redirectUri())
  if (!pending || pending.state !== params.get('state'))
    throw new Error('the sign-in answer does not match a sign-in started here; start again')
  if (params.has('error'))
    throw new Error(
      `the identity provider refused: ${params.get('error_description') ?? params.get('error')}`,
    )
  const doc = await discover(oidc.issuer)
  const res = await fetch(doc.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: oidc.clientId,
      code_verifier: pending.verifier,
    }),
  })
  const answer = await res.json().catch(() => ({}))
  if (!res.ok || !answer.access_token)
    throw new Error(`the token endpoint refused: ${answer.error_description ?? answer.error ?? res.status}`)
  if (answer.id_token) checkIdToken(answer.id_token, oidc, doc.issuer, pending.nonce)
  await signInWithToken(answer.access_token, answer.expires_in)
  return pending.returnTo || '#/'
}

/** A code injected from another sign-in carries another nonce; the signature is Regent's to check. */
function checkIdToken(idToken, oidc, issuer, nonce) {
  const claims = JSON.parse(atob(idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  if (claims.nonce !== nonce) throw new Error('the ID token does not carry this sign-in’s nonce')
  if (!audiences.includes(oidc.clientId)) throw new Error('the ID token is for another client')
  if (claims.iss !== issuer) throw new Error('the ID token comes from another issuer')
}
