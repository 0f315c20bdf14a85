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

/** One page of requests at a time, newest first, with the table, an empty note and the pager. */
function DeletionList({ query, caption, empty }) {
  const key = JSON.stringify(query)
  const pages = useCursorStack(key)
  const list = useAsync(
    () => api('/v1/deletions', { query: { ...query, limit: 50, cursor: pages.cursor } }),
    [key, pages.cursor],
  )
  return html`${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${list.data && list.data.items.length === 0 ? html`<p class="empty" role="status">${empty}</p>` : null}
    ${
      list.data && list.data.items.length > 0
        ? html`<${RequestTable} items=${list.data.items} caption=${caption} />`
        : null
    }
    ${
      list.data
        ? html`<${Pager}
            label=${`${caption}: pages`}
            canGoBack=${pages.canGoBack}
            onBack=${pages.back}
            nextCursor=${list.data.nextCursor}
            onNext=${pages.next}
          />`
        : null
    }`
}

/** Requests awaiting my approval: I am an eligible approver and not the requester. Newest first. */
export function InboxPage() {
  return html`<h1>Inbox</h1>
    <p class="muted">Deletion requests waiting for your approval, newest first.</p>
    <${DeletionList}
      query=${{ awaitingMyApproval: true }}
      caption="Awaiting your approval"
      empty="Nothing awaits your approval."
    />`
}

/** Every request the caller may see (admins: all; others: their own and their teams'). */
export function RequestListPage({ route }) {
  const state = route.query.state ?? ''
  return html`<h1>Deletion requests</h1>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label for="state-filter">State</label>
      <select id="state-filter" value=${state} onChange=${(e) => navigate(['requests'], { state: e.currentTarget.value })}>
        <option value="">any</option>
        ${STATES.map((s) => html`<option key=${s} value=${s}>${s.replace(/_/g, ' ')}</option>`)}
      </select>
    </form>
    <${DeletionList} query=${{ state }} caption="Requests you may see" empty="No requests." />`
}
