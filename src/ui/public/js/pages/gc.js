import { api, segment } from '../api.js'
import {
  Bytes,
  ErrorNotice,
  Fact,
  Loading,
  Pager,
  StateBadge,
  Time,
  useAsync,
  useCursorStack,
} from '../components.js'
import { html, useState } from '../html.js'
import { href, navigate } from '../router.js'

/** Admins ask for a run; everyone else sees the runs. */
function RequestGc({ registries, onRequested }) {
  const [registry, setRegistry] = useState('')
  const [dryRun, setDryRun] = useState(true)
  const [deleteUntagged, setDeleteUntagged] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState()
  const chosen = registry || registries[0]?.name || ''
  const submit = async (event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      const run = await api(`/v1/registries/${segment(chosen)}/gc`, {
        method: 'POST',
        body: { dryRun, deleteUntagged },
      })
      onRequested(run)
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  return html`<section aria-labelledby="request-gc">
    <h2 id="request-gc">Request a garbage collection</h2>
    <form class="filters" onSubmit=${submit}>
      <label for="gc-registry">Registry</label>
      <select id="gc-registry" value=${chosen} onChange=${(e) => setRegistry(e.currentTarget.value)}>
        ${registries.map((r) => html`<option key=${r.name} value=${r.name}>${r.name}</option>`)}
      </select>
      <label class="check"><input type="checkbox" checked=${dryRun} onChange=${(e) => setDryRun(e.currentTarget.checked)} /> Dry run only</label>
      <label class="check"><input type="checkbox" checked=${deleteUntagged} onChange=${(e) => setDeleteUntagged(e.currentTarget.checked)} /> Also delete untagged manifests</label>
      <button type="submit" disabled=${busy || !chosen}>Request</button>
    </form>
    <${ErrorNotice} error=${error} title="Regent refused" />
  </section>`
}

function Runs({ me, query }) {
  const registries = useAsync(() => api('/v1/registries').then((r) => r.items), [])
  const key = JSON.stringify(query)
  const pages = useCursorStack(key)
  const list = useAsync(
    () =>
      api('/v1/gc-runs', {
        query: { registry: query.registry, state: query.state, limit: 50, cursor: pages.cursor },
      }),
    [key, pages.cursor],
  )
  return html`<h1>Garbage collection</h1>
    ${me.roles.includes('admin') && registries.data ? html`<${RequestGc} registries=${registries.data} onRequested=${(run) => navigate(['gc', run.id])} />` : null}
    <h2>Runs</h2>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label for="gc-filter-registry">Registry</label>
      <select id="gc-filter-registry" value=${query.registry ?? ''} onChange=${(e) => navigate(['gc'], { ...query, registry: e.currentTarget.value })}>
        <option value="">any</option>
        ${(registries.data ?? []).map((r) => html`<option key=${r.name} value=${r.name}>${r.name}</option>`)}
      </select>
      <label for="gc-filter-state">State</label>
      <select id="gc-filter-state" value=${query.state ?? ''} onChange=${(e) => navigate(['gc'], { ...query, state: e.currentTarget.value })}>
        <option value="">any</option>
        ${['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => html`<option key=${s} value=${s}>${s}</option>`)}
      </select>
    </form>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${
      list.data
        ? html`<table>
            <caption>Garbage collection runs, newest first</caption>
            <thead><tr><th scope="col">Run</th><th scope="col">Registry</th><th scope="col">Trigger</th><th scope="col">State</th><th scope="col">Freed</th><th scope="col">Requested</th></tr></thead>
            <tbody>
              ${list.data.items.map(
                (run) => html`<tr key=${run.id}>
                  <td><a href=${href(['gc', run.id])}>${run.summary}</a></td>
                  <td>${run.registry}</td>
                  <td>${run.trigger}${run.dryRun ? ' (dry run)' : ''}</td>
                  <td><${StateBadge} state=${run.state} /></td>
                  <td><${Bytes} value=${run.bytesFreed} /></td>
                  <td><${Time} value=${run.createdAt} /></td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${list.data.items.length === 0 ? html`<p class="empty" role="status">No runs.</p>` : null}
          <${Pager} label="Run pages" canGoBack=${pages.canGoBack} onBack=${pages.back} nextCursor=${list.data.nextCursor} onNext=${pages.next} />`
        : null
    }`
}

function Run({ id }) {
  const run = useAsync(() => api(`/v1/gc-runs/${segment(id)}`), [id])
  const r = run.data
  return html`<h1>Garbage collection run <code>${id.slice(0, 8)}</code> ${r ? html`<${StateBadge} state=${r.state} />` : null}</h1>
    <p><a href=${href(['gc'])}>All runs</a> · <button type="button" class="secondary" onClick=${run.reload}>Refresh</button></p>
    ${run.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${run.error} />
    ${
      r
        ? html`<p class="summary">${r.summary}</p>
          <dl class="facts">
            <dt>Registry</dt><dd>${r.registry}</dd>
            <dt>Trigger</dt><dd>${r.trigger}, by ${r.requestedBy.onBehalfOf ?? r.requestedBy.subject}</dd>
            <dt>Mode</dt><dd>${r.dryRun ? 'dry run' : 'collect'}${r.deleteUntagged ? ', untagged manifests too' : ''}</dd>
            <dt>Bytes before</dt><dd><${Bytes} value=${r.bytesBefore} /></dd>
            <dt>Bytes after</dt><dd><${Bytes} value=${r.bytesAfter} /></dd>
            <dt>Bytes freed</dt><dd><${Bytes} value=${r.bytesFreed} /></dd>
            <dt>Eligible</dt><dd><${Fact} value=${r.eligible} /></dd>
            <dt>Collected</dt><dd><${Fact} value=${r.collected} /></dd>
            ${r.failedStep ? html`<dt>Failed step</dt><dd>${r.failedStep}: ${r.error}</dd>` : null}
            <dt>Started</dt><dd><${Time} value=${r.startedAt} /></dd>
            <dt>Finished</dt><dd><${Time} value=${r.finishedAt} /></dd>
          </dl>
          <h2>Steps</h2>
          <table class="steps">
            <caption>Each step of the protocol, in order</caption>
            <thead><tr><th scope="col">Step</th><th scope="col">Attempt</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Result</th><th scope="col">Output</th></tr></thead>
            <tbody>
              ${r.steps.map(
                (s, i) => html`<tr key=${i}>
                  <td>${s.name}</td><td>${s.attempt}</td><td><${Time} value=${s.startedAt} /></td><td><${Time} value=${s.finishedAt} /></td>
                  <td>${s.ok === null ? 'running' : s.ok ? 'ok' : 'failed'}</td>
                  <td>${s.output ? html`<pre tabindex="0">${s.output}</pre>` : null}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${r.log ? html`<details><summary>Log</summary><pre tabindex="0">${r.log}</pre></details>` : null}`
        : null
    }`
}

export function GcPage({ me, rest, route }) {
  return rest[0] ? html`<${Run} id=${rest[0]} />` : html`<${Runs} me=${me} query=${route.query} />`
}
