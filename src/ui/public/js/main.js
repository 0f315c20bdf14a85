// The console's shell: sign-in, navigation, and the page for the current route.
import { ErrorNotice } from './components.js'
import { html, render, useEffect, useRef, useState } from './html.js'
import { AuditPage } from './pages/audit.js'
import { BrowsePage } from './pages/browse.js'
import { GcPage } from './pages/gc.js'
import { InboxPage, RequestListPage } from './pages/inbox.js'
import { NewRequestPage } from './pages/new-request.js'
import { RequestPage } from './pages/request.js'
import { RetentionPage } from './pages/retention.js'
import { SignInPage } from './pages/sign-in.js'
import { href, useRoute } from './router.js'
import { completeOidcSignIn, isOidcCallback, onSessionChange, session, signOut } from './session.js'

const NAV = [
  { segment: '', label: 'Inbox' },
  { segment: 'requests', label: 'Requests' },
  { segment: 'new', label: 'New request' },
  { segment: 'browse', label: 'Browse' },
  { segment: 'audit', label: 'Audit' },
  { segment: 'gc', label: 'Garbage collection' },
  { segment: 'retention', label: 'Retention' },
]

const PAGES = {
  '': InboxPage,
  requests: RequestListPage,
  new: NewRequestPage,
  browse: BrowsePage,
  audit: AuditPage,
  gc: GcPage,
  retention: RetentionPage,
}

function Header({ me, section }) {
  return html`<header class="top">
    <a class="skip-link" href="#content">Skip to content</a>
    <div class="brand">Regent</div>
    <nav aria-label="Main">
      <ul>
        ${NAV.map(
          (item) => html`<li key=${item.segment}>
            <a href=${href(item.segment ? [item.segment] : [])} aria-current=${section === item.segment ? 'page' : undefined}>
              ${item.label}
            </a>
          </li>`,
        )}
      </ul>
    </nav>
    <div class="who" aria-label="Signed in">
      <span>Signed in as <strong class="subject">${me.subject}</strong></span>
      ${me.onBehalfOf ? html` <span>for <strong>${me.onBehalfOf}</strong></span>` : null}
      <span class="muted">
        ${' '}(${me.roles.join(', ') || 'no roles'}${me.teams.length ? `; ${me.teams.join(', ')}` : ''})
      </span>
      <button type="button" class="secondary" onClick=${() => signOut()}>Sign out</button>
    </div>
  </header>`
}

function Shell({ me }) {
  const route = useRoute()
  const [section = '', ...rest] = route.segments
  const Page = section === 'requests' && rest.length > 0 ? RequestPage : PAGES[section]
  const main = useRef(null)
  // Keyboard and screen reader users land on the new page's heading after each navigation.
  useEffect(() => {
    const heading = main.current?.querySelector('h1')
    if (heading && document.activeElement !== heading && !main.current.contains(document.activeElement)) {
      heading.setAttribute('tabindex', '-1')
      heading.focus()
    }
  }, [route.path])
  return html`<${Header} me=${me} section=${section} />
    <main id="content" class="page" ref=${main}>
      ${
        Page
          ? html`<${Page} key=${Page === RequestPage ? route.path : section} me=${me} route=${route} rest=${rest} />`
          : html`<h1>Not found</h1><p>No page at <code>${route.path}</code>.</p>`
      }
    </main>`
}

function App({ config, startError }) {
  const [current, setCurrent] = useState(session())
  const [reason, setReason] = useState(startError ? 'error' : undefined)
  const [error, setError] = useState(startError)
  useEffect(
    () =>
      onSessionChange((next, why) => {
        setCurrent(next)
        setReason(why)
        if (next) setError(undefined)
      }),
    [],
  )
  if (current) return html`<${Shell} me=${current.me} />`
  return html`<main id="content" class="page narrow">
    <${SignInPage} config=${config} reason=${reason} />
    <${ErrorNotice} error=${error} title="Sign-in failed" />
  </main>`
}

async function start() {
  const root = document.getElementById('app')
  const config = await fetch('config.json').then((r) => r.json())
  let startError
  if (isOidcCallback() && config.oidc) {
    try {
      window.location.hash = await completeOidcSignIn(config.oidc)
    } catch (err) {
      startError = err
    }
  }
  root.textContent = ''
  render(html`<${App} config=${config} startError=${startError} />`, root)
}

start().catch((err) => {
  const status = document.getElementById('boot-status')
  if (status) status.textContent = `The console could not start: ${err.message}`
})
