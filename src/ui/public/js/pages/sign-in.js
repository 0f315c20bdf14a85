import { ErrorNotice } from '../components.js'
import { html, useState } from '../html.js'
import { beginOidcSignIn, signInWithToken } from '../session.js'

const REASONS = {
  expired: 'Your session ended (the token expired or was refused). Sign in again.',
  'signed-out': 'You are signed out.',
}

/**
 * Sign-in with the configured identity provider (authorization code flow with PKCE), and, in
 * development, a form to paste a token (`npm run -s token -- --sub alice --roles requester`).
 */
export function SignInPage({ config, reason }) {
  const [error, setError] = useState()
  const [busy, setBusy] = useState(false)
  const [token, setToken] = useState('')

  const oidc = async () => {
    setBusy(true)
    setError(undefined)
    try {
      await beginOidcSignIn(config.oidc, window.location.hash)
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }

  const paste = async (event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      await signInWithToken(token.trim())
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }

  return html`<h1>Sign in to Regent</h1>
    ${REASONS[reason] ? html`<p role="status" class="notice">${REASONS[reason]}</p>` : null}
    ${
      config.oidc
        ? html`<section aria-labelledby="sso">
            <h2 id="sso">With your organisation’s account</h2>
            <p>You will be sent to <code>${config.oidc.issuer}</code> and back.</p>
            <button type="button" onClick=${oidc} disabled=${busy}>Sign in</button>
          </section>`
        : null
    }
    ${
      config.pasteToken
        ? html`<section aria-labelledby="paste">
            <h2 id="paste">With a token</h2>
            <p>
              For development: paste a bearer token, e.g. from
              <code>npm run -s token -- --sub alice --groups payments --roles requester</code>. It is kept in
              this tab’s memory only.
            </p>
            <form onSubmit=${paste}>
              <label for="token">Bearer token</label>
              <textarea
                id="token"
                name="token"
                rows="4"
                autocomplete="off"
                spellcheck="false"
                required
                value=${token}
                onInput=${(e) => setToken(e.currentTarget.value)}
              ></textarea>
              <button type="submit" disabled=${busy || !token.trim()}>Use this token</button>
            </form>
          </section>`
        : null
    }
    ${!config.oidc && !config.pasteToken ? html`<p>No sign-in method is configured (<code>ui.oidc</code>).</p>` : null}
    <${ErrorNotice} error=${error} title="Sign-in failed" />`
}
