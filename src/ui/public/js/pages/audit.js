import { api, apiFetch } from '../api.js'
import { Digest, ErrorNotice, Loading, Pager, Time, useAsync, useCursorStack } from '../components.js'
import { html, useEffect, useState } from '../html.js'
import { href, navigate } from '../router.js'

const FILTERS = [
  { name: 'registry', label: 'Registry' },
  { name: 'repository', label: 'Repository' },
  { name: 'actor', label: 'Actor (subject)' },
  { name: 'action', label: 'Action', placeholder: 'deletion.approved' },
  { name: 'deletionId', label: 'Deletion id' },
  { name: 'from', label: 'From', type: 'datetime-local' },
  { name: 'to', label: 'To', type: 'datetime-local' },
]

/** A datetime-local value is the browser's local time; the API wants an ISO date-time. */
function apiFilters(query) {
  const filters = {}
  for (const { name, type } of FILTERS) {
    const value = query[name]?.trim()
    if (!value) continue
    filters[name] = type === 'datetime-local' ? new Date(value).toISOString() : value
  }
  return filters
}

function ChainVerification() {
  const check = useAsync(() => api('/v1/audit/verify'), [])
  return html`<section aria-labelledby="chain" class="chain">
    <h2 id="chain">Hash chain</h2>
    ${check.loading ? html`<${Loading} what="Verifying the chain" />` : null}
    <${ErrorNotice} error=${check.error} />
    ${
      check.data
        ? check.data.ok
          ? html`<p class="notice notice-ok" role="status">
              Intact: ${check.data.checked} events checked${check.data.lastSeq ? `, up to #${check.data.lastSeq}` : ''}.
            </p>`
          : html`<p class="notice notice-error" role="alert">
              Broken at event #${check.data.firstBrokenSeq}: ${check.data.reason}
            </p>`
        : null
    }
    <button type="button" class="secondary" onClick=${check.reload}>Verify again</button>
  </section>`
}

function Record({ event }) {
  return html`<pre class="record" tabindex="0" aria-label=${`Full record of event ${event.seq}`}>${JSON.stringify(event, null, 2)}</pre>`
}

/** Streams the NDJSON export with the bearer token and hands it to the browser as a download. */
function ExportButton({ filters }) {
  const [state, setState] = useState({ busy: false })
  const run = async () => {
    setState({ busy: true })
    try {
      const res = await apiFetch('/v1/audit/export', { query: filters })
      const url = URL.createObjectURL(await res.blob())
      const link = document.createElement('a')
      link.href = url
      link.download = `regent-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.ndjson`
      link.click()
      setTimeout(() => URL.revokeObjectURL(url), 10_000)
      setState({ busy: false })
    } catch (error) {
      setState({ busy: false, error })
    }
  }
  return html`<button type="button" class="secondary" disabled=${state.busy} onClick=${run}>Export as NDJSON</button>
    <${ErrorNotice} error=${state.error} />`
}

export function AuditPage({ me, route }) {
  const [form, setForm] = useState(route.query)
  const queryKey = JSON.stringify(route.query)
  useEffect(() => setForm(route.query), [queryKey])
  const filters = apiFilters(route.query)
  const key = JSON.stringify(filters)
  const pages = useCursorStack(key)
  const [open, setOpen] = useState()
  const admin = me.roles.includes('admin')
  const list = useAsync(
    () => api('/v1/audit', { query: { ...filters, limit: 50, cursor: pages.cursor } }),
    [key, pages.cursor],
  )

  const submit = (event) => {
    event.preventDefault()
    navigate(['audit'], form)
  }
  return html`<h1>Audit log</h1>
    ${
      admin
        ? null
        : html`<p class="muted">
            You read the events of one repository your team owns (name the registry and the repository), or of
            one deletion request you may see.
          </p>`
    }
    <form class="filters audit-filters" onSubmit=${submit}>
      ${FILTERS.map(
        (f) => html`<div class="field" key=${f.name}>
          <label for=${`audit-${f.name}`}>${f.label}</label>
          <input
            id=${`audit-${f.name}`}
            type=${f.type ?? 'text'}
            placeholder=${f.placeholder}
            value=${form[f.name] ?? ''}
            onInput=${(e) => setForm({ ...form, [f.name]: e.currentTarget.value })}
          />
        </div>`,
      )}
      <div class="buttons">
        <button type="submit">Show events</button>
        <a href=${href(['audit'])} onClick=${() => setForm({})}>Clear filters</a>
      </div>
    </form>
    <div class="buttons"><${ExportButton} filters=${filters} /></div>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} title="These events are not yours to read" />
    ${
      list.data
        ? html`<div class="table-scroll">
            <table class="audit">
              <caption>Audit events, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">When</th>
                  <th scope="col">Action</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">What</th>
                  <th scope="col">Record</th>
                </tr>
              </thead>
              <tbody>
                ${list.data.items.map(
                  (e) => html`<tr key=${e.seq} data-action=${e.action}>
                      <td>${e.seq}</td>
                      <td><${Time} value=${e.occurredAt} /></td>
                      <td><code>${e.action}</code></td>
                      <td class="actor">
                        ${e.actorSubject}${e.onBehalfOf ? html` <span class="muted">for</span> ${e.onBehalfOf}` : null}
                        <span class="muted"> (${e.channel})</span>
                      </td>
                      <td>${e.outcome}</td>
                      <td>
                        ${[e.registry, e.repository].filter(Boolean).join(' / ')}${e.tag ? html` <code>${e.tag}</code>` : null}
                        ${e.digest ? html` <${Digest} value=${e.digest} />` : null}
                        ${e.deletionId ? html` <a href=${href(['requests', e.deletionId])}>request ${e.deletionId.slice(0, 8)}</a>` : null}
                      </td>
                      <td>
                        <button
                          type="button"
                          class="secondary"
                          aria-expanded=${open === e.seq ? 'true' : 'false'}
                          onClick=${() => setOpen(open === e.seq ? undefined : e.seq)}
                        >
                          ${open === e.seq ? 'Hide' : 'Show'}<span class="visually-hidden"> record ${e.seq}</span>
                        </button>
                      </td>
                    </tr>
                    ${open === e.seq ? html`<tr key=${`${e.seq}-record`}><td colspan="7"><${Record} event=${e} /></td></tr>` : null}`,
                )}
              </tbody>
            </table>
          </div>
          ${list.data.items.length === 0 ? html`<p class="empty" role="status">No events match.</p>` : null}
          <${Pager} label="Audit pages" canGoBack=${pages.canGoBack} onBack=${pages.back} nextCursor=${list.data.nextCursor} onNext=${pages.next} />`
        : null
    }
    ${admin ? html`<${ChainVerification} />` : null}`
}
