import { api, segment } from '../api.js'
import { Bytes, Digest, ErrorNotice, Loading, StateBadge, TagList, Time, useAsync } from '../components.js'
import { plural } from '../format.js'
import { html, useState } from '../html.js'
import { href } from '../router.js'

function Policies() {
  const list = useAsync(() => api('/v1/policies'), [])
  return html`<h1>Retention policies</h1>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${
      list.data
        ? html`<table>
            <caption>Policies, by name</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Team</th><th scope="col">Registry</th><th scope="col">Repositories</th><th scope="col">Schedule</th><th scope="col">Mode</th><th scope="col">Enabled</th></tr></thead>
            <tbody>
              ${list.data.items.map(
                (p) => html`<tr key=${p.id}>
                  <td><a href=${href(['retention', p.id])}>${p.name}</a></td>
                  <td>${p.team ?? html`<span class="muted">global</span>`}</td>
                  <td>${p.registry}</td>
                  <td><${TagList} tags=${p.repositories} /></td>
                  <td>${p.schedule ? html`<code>${p.schedule}</code>` : html`<span class="muted">on demand</span>`}</td>
                  <td>${p.mode}</td>
                  <td>${p.enabled ? 'yes' : 'no'}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${list.data.items.length === 0 ? html`<p class="empty" role="status">No policies.</p>` : null}`
        : null
    }`
}

function Rule({ rule, index }) {
  const { description, ...body } = rule
  return html`<li key=${index}>${description ? html`<strong>${description}</strong>: ` : null}<code class="json">${JSON.stringify(body)}</code></li>`
}

function ExpiredList({ items }) {
  if (items.length === 0) return html`<span class="muted">none</span>`
  return html`<ul>
    ${items.map((e) => html`<li key=${e.repository + e.digest}>${e.repository} <${Digest} value=${e.digest} /> <${TagList} tags=${e.tags} /></li>`)}
  </ul>`
}

function Preview({ preview }) {
  const [filter, setFilter] = useState('all')
  const verdicts = preview.verdicts.filter((v) => filter === 'all' || v.verdict === filter)
  return html`<section aria-labelledby="preview-heading" class="preview">
    <h2 id="preview-heading">Preview</h2>
    <p role="status">${preview.summary}</p>
    <p>
      ${plural(preview.counts.expiredTags, 'tag')} of ${preview.counts.tags} would go
      (${plural(preview.counts.expiredArtifacts, 'image')}), freeing about <${Bytes} value=${preview.counts.bytes} />.
      Evaluated <${Time} value=${preview.evaluatedAt} />.
    </p>
    ${
      preview.guard.tripped
        ? html`<div class="notice notice-warning"><p>A run would stop at the blast-radius guard:</p><ul>${preview.guard.reasons.map((r) => html`<li key=${r}>${r}</li>`)}</ul></div>`
        : null
    }
    <h3>Since the last preview or run</h3>
    ${
      preview.diff.against
        ? html`<p class="muted">Compared with the ${preview.diff.against.kind} of <${Time} value=${preview.diff.against.createdAt} />.</p>
          <h4>Newly expired</h4><${ExpiredList} items=${preview.diff.newlyExpired} />
          <h4>No longer expired</h4><${ExpiredList} items=${preview.diff.noLongerExpired} />`
        : html`<p class="muted">Nothing to compare with yet.</p>`
    }
    <h3>Verdicts</h3>
    <label for="verdict-filter">Show</label>
    <select id="verdict-filter" value=${filter} onChange=${(e) => setFilter(e.currentTarget.value)}>
      <option value="all">every tag</option>
      <option value="expire">expired tags</option>
      <option value="keep">kept tags</option>
    </select>
    <div class="table-scroll">
      <table class="verdicts">
        <caption>Verdict and reason per tag</caption>
        <thead><tr><th scope="col">Repository</th><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Verdict</th><th scope="col">Decided by</th><th scope="col">Because</th></tr></thead>
        <tbody>
          ${verdicts.map(
            (v, i) => html`<tr key=${i}>
              <td>${v.repository}</td>
              <td>${v.tag ? html`<code>${v.tag}</code>` : html`<span class="muted">untagged</span>`}</td>
              <td><${Digest} value=${v.digest} /></td>
              <td><span class=${`badge verdict-${v.verdict}`}>${v.verdict}</span></td>
              <td>${v.decidedBy}</td>
              <td>${v.fact}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </section>`
}

function Policy({ id }) {
  const policy = useAsync(() => api(`/v1/policies/${segment(id)}`), [id])
  const runs = useAsync(() => api(`/v1/policies/${segment(id)}/runs`, { query: { limit: 50 } }), [id])
  const [preview, setPreview] = useState({ busy: false })
  const [running, setRunning] = useState({ busy: false })
  const p = policy.data

  const runPreview = async () => {
    setPreview({ busy: true })
    try {
      setPreview({
        busy: false,
        data: await api(`/v1/policies/${segment(id)}/preview`, { method: 'POST', body: {} }),
      })
      runs.reload()
    } catch (error) {
      setPreview({ busy: false, error })
    }
  }
  const runNow = async () => {
    setRunning({ busy: true })
    try {
      const run = await api(`/v1/policies/${segment(id)}/run`, { method: 'POST', body: {} })
      setRunning({ busy: false, notice: `Run queued: ${run.summary}` })
      runs.reload()
    } catch (error) {
      setRunning({ busy: false, error })
    }
  }

  return html`<h1>Retention policy ${p ? p.name : ''}</h1>
    <p><a href=${href(['retention'])}>All policies</a></p>
    ${policy.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${policy.error} />
    ${
      p
        ? html`<dl class="facts">
            <dt>Team</dt><dd>${p.team ?? 'global'}</dd>
            <dt>Registry</dt><dd>${p.registry}</dd>
            <dt>Repositories</dt><dd><${TagList} tags=${p.repositories} /></dd>
            <dt>Schedule</dt><dd>${p.schedule ?? 'on demand'}</dd>
            <dt>Mode</dt><dd>${p.mode}${p.enabled ? '' : ' (disabled)'}</dd>
            <dt>Default</dt><dd>${p.default}</dd>
            <dt>Version</dt><dd>${p.version}, updated by ${p.updatedBy} <${Time} value=${p.updatedAt} /></dd>
          </dl>
          <h2>Rules, in priority order</h2>
          <ol class="rules">${p.rules.map((rule, i) => html`<${Rule} key=${i} rule=${rule} index=${i} />`)}</ol>
          <div class="buttons">
            <button type="button" disabled=${preview.busy} onClick=${runPreview}>Preview now</button>
            <button type="button" class="secondary" disabled=${running.busy} onClick=${runNow}>Run now</button>
          </div>
          ${running.notice ? html`<p role="status">${running.notice}</p>` : null}
          <${ErrorNotice} error=${preview.error ?? running.error} />
          ${preview.busy ? html`<${Loading} what="Evaluating" />` : null}
          ${preview.data ? html`<${Preview} preview=${preview.data} />` : null}`
        : null
    }
    <h2>Runs</h2>
    <${ErrorNotice} error=${runs.error} />
    ${
      runs.data
        ? html`<table>
            <caption>Runs and previews of this policy, newest first</caption>
            <thead><tr><th scope="col">When</th><th scope="col">Trigger</th><th scope="col">State</th><th scope="col">Summary</th><th scope="col">Deletion request</th></tr></thead>
            <tbody>
              ${runs.data.items.map(
                (r) => html`<tr key=${r.id}>
                  <td><${Time} value=${r.createdAt} /></td>
                  <td>${r.trigger}</td>
                  <td><${StateBadge} state=${r.state} /></td>
                  <td>${r.summary}${r.error ? html`<p class="item-error">${r.error}</p>` : null}</td>
                  <td>${r.deletionId ? html`<a href=${href(['requests', r.deletionId])}>${r.deletionId.slice(0, 8)}</a>` : html`<span class="muted">–</span>`}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${runs.data.items.length === 0 ? html`<p class="empty">No runs yet.</p>` : null}`
        : null
    }`
}

export function RetentionPage({ rest }) {
  return rest[0] ? html`<${Policy} id=${rest[0]} />` : html`<${Policies} />`
}
