import { api } from '../api.js'
import {
  BlastRadius,
  ErrorNotice,
  Loading,
  Pager,
  StateBadge,
  Time,
  useAsync,
  useCursorStack,
} from '../components.js'
import { html } from '../html.js'
import { href, navigate } from '../router.js'

const STATES = [
  'awaiting_approval',
  'queued',
  'running',
  'succeeded',
  'partially_failed',
  'failed',
  'rejected',
  'cancelled',
  'expired',
  'restored',
]

function RequestTable({ items, caption }) {
  return html`<table class="requests">
    <caption>${caption}</caption>
    <thead>
      <tr>
        <th scope="col">Request</th>
        <th scope="col">State</th>
        <th scope="col">Requested by</th>
        <th scope="col">Blast radius</th>
        <th scope="col">Filed</th>
      </tr>
    </thead>
    <tbody>
      ${items.map(
        (d) => html`<tr key=${d.id} data-deletion=${d.id}>
          <td>
            <a href=${href(['requests', d.id])}>${d.summary}</a>
            <div class="muted">${d.reason}${d.ticket ? ` (${d.ticket})` : ''}</div>
          </td>
          <td><${StateBadge} state=${d.state} /></td>
          <td>${d.requester.person}</td>
          <td><${BlastRadius} plan=${d.plan} /></td>
          <td><${Time} value=${d.createdAt} /></td>
        </tr>`,
      )}
    </tbody>
  </table>`
}

/** Requests awaiting my approval: I am an eligible approver and not the requester. Newest first. */
export function InboxPage() {
  const pages = useCursorStack('inbox')
  const list = useAsync(
    () => api('/v1/deletions', { query: { awaitingMyApproval: true, limit: 50, cursor: pages.cursor } }),
    [pages.cursor],
  )
  return html`<h1>Inbox</h1>
    <p class="muted">Deletion requests waiting for your approval, newest first.</p>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${
      list.data && list.data.items.length === 0
        ? html`<p class="empty" role="status">Nothing awaits your approval.</p>`
        : null
    }
    ${
      list.data && list.data.items.length > 0
        ? html`<${RequestTable} items=${list.data.items} caption="Awaiting your approval" />`
        : null
    }
    ${
      list.data
        ? html`<${Pager}
            label="Inbox pages"
            canGoBack=${pages.canGoBack}
            onBack=${pages.back}
            nextCursor=${list.data.nextCursor}
            onNext=${pages.next}
          />`
        : null
    }`
}

/** Every request the caller may see (admins: all; others: their own and their teams'). */
export function RequestListPage({ route }) {
  const state = route.query.state ?? ''
  const pages = useCursorStack(state)
  const list = useAsync(
    () => api('/v1/deletions', { query: { state, limit: 50, cursor: pages.cursor } }),
    [state, pages.cursor],
  )
  return html`<h1>Deletion requests</h1>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label for="state-filter">State</label>
      <select id="state-filter" value=${state} onChange=${(e) => navigate(['requests'], { state: e.currentTarget.value })}>
        <option value="">any</option>
        ${STATES.map((s) => html`<option key=${s} value=${s}>${s.replace(/_/g, ' ')}</option>`)}
      </select>
    </form>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${list.data && list.data.items.length === 0 ? html`<p class="empty" role="status">No requests.</p>` : null}
    ${
      list.data && list.data.items.length > 0
        ? html`<${RequestTable} items=${list.data.items} caption="Requests you may see" />`
        : null
    }
    ${
      list.data
        ? html`<${Pager}
            label="Request pages"
            canGoBack=${pages.canGoBack}
            onBack=${pages.back}
            nextCursor=${list.data.nextCursor}
            onNext=${pages.next}
          />`
        : null
    }`
}
