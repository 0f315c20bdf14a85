import { ApiError, api, segment } from '../api.js'
import { ErrorNotice, Loading, PlanView, TagTable, useAsync, useDebounced } from '../components.js'
import { html, useEffect, useMemo, useState } from '../html.js'
import { navigate } from '../router.js'

const VERBS = [
  { value: 'untag', label: 'Untag', help: 'remove only the named tags; the image and its other tags stay' },
  {
    value: 'delete-manifest',
    label: 'Delete manifest',
    help: 'delete the image each tag points at; every tag on that image vanishes with it',
  },
  {
    value: 'delete-image',
    label: 'Delete image',
    help: 'delete the manifest and what hangs off it: index children no other index uses, signatures, SBOMs',
  },
]

function TagPicker({ registry, repository, selected, setSelected }) {
  const [search, setSearch] = useState('')
  const [pages, setPages] = useState([])
  const first = useAsync(
    () =>
      repository
        ? api(`/v1/registries/${segment(registry)}/repositories/${segment(repository)}/tags`, {
            query: { limit: 500 },
          })
        : Promise.resolve(null),
    [registry, repository],
  )
  useEffect(() => setPages(first.data ? [first.data] : []), [first.data])
  const [more, setMore] = useState({ busy: false, error: undefined })
  const tags = pages.flatMap((p) => p.items)
  const next = pages.at(-1)?.nextCursor
  const shown = tags.filter((t) => t.name.toLowerCase().includes(search.trim().toLowerCase()))

  const loadMore = async () => {
    setMore({ busy: true })
    try {
      const page = await api(`/v1/registries/${segment(registry)}/repositories/${segment(repository)}/tags`, {
        query: { limit: 500, cursor: next },
      })
      setPages((p) => [...p, page])
      setMore({ busy: false })
    } catch (error) {
      setMore({ busy: false, error })
    }
  }
  const toggle = (name, on) =>
    setSelected((s) => {
      const copy = new Set(s)
      if (on) copy.add(name)
      else copy.delete(name)
      return copy
    })

  if (!repository) return html`<p class="muted">Choose a repository to see its tags.</p>`
  if (first.loading && tags.length === 0) return html`<${Loading} what="Loading tags" />`
  if (first.error) return html`<${ErrorNotice} error=${first.error} />`
  return html`<div class="tag-picker">
    <label for="tag-search">Search tags</label>
    <input id="tag-search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
    <p class="muted" role="status">${shown.length} of ${tags.length} tags shown, ${selected.size} selected.</p>
    <div class="buttons">
      <button type="button" class="secondary" onClick=${() => setSelected((s) => new Set([...s, ...shown.map((t) => t.name)]))}>
        Select all shown
      </button>
      <button type="button" class="secondary" onClick=${() => setSelected(new Set())}>Clear selection</button>
    </div>
    <${TagTable}
      tags=${shown}
      caption=${`Tags of ${repository}`}
      nameCell=${(tag) => html`<label class="check">
        <input type="checkbox" checked=${selected.has(tag.name)} onChange=${(e) => toggle(tag.name, e.currentTarget.checked)} />
        <code>${tag.name}</code>
      </label>`}
    />
    ${next ? html`<button type="button" class="secondary" disabled=${more.busy} onClick=${loadMore}>Load more tags</button>` : null}
    <${ErrorNotice} error=${more.error} />
  </div>`
}

/**
 * A new deletion: pick registry, repository, tags (or a pattern) and a verb; the dry-run plan is
 * shown before anything is filed, and "Request deletion" files exactly that input. Each dry run
 * gets a fresh Idempotency-Key, so a double click or a retry after a lost answer files one request.
 */
export function NewRequestPage({ route }) {
  const registries = useAsync(() => api('/v1/registries').then((r) => r.items), [])
  const [registry, setRegistry] = useState(route.query.registry ?? '')
  const [repository, setRepository] = useState(route.query.repository ?? '')
  const [typed, setTyped] = useState(route.query.repository ?? '')
  const [selected, setSelected] = useState(() => new Set(route.query.tag ? [route.query.tag] : []))
  const [pattern, setPattern] = useState('')
  const [verb, setVerb] = useState('delete-manifest')
  const [reason, setReason] = useState('')
  const [ticket, setTicket] = useState('')
  const [dryRun, setDryRun] = useState() // { signature, plan, summary, key }
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState()

  useEffect(() => {
    if (!registry && registries.data?.length) setRegistry(registries.data[0].name)
  }, [registries.data])
  const prefix = useDebounced(typed)
  const suggestions = useAsync(
    () =>
      registry
        ? api(`/v1/registries/${segment(registry)}/repositories`, { query: { prefix, limit: 50 } })
        : Promise.resolve({ items: [] }),
    [registry, prefix],
  )
  useEffect(() => setSelected((s) => (repository === route.query.repository ? s : new Set())), [repository])

  const input = useMemo(() => {
    const targets = [
      ...[...selected].sort().map((tag) => ({ repository, tag })),
      ...(pattern.trim() ? [{ repository, tagPattern: pattern.trim() }] : []),
    ]
    return {
      registry,
      verb,
      targets,
      reason: reason.trim(),
      ...(ticket.trim() ? { ticket: ticket.trim() } : {}),
    }
  }, [registry, repository, selected, pattern, verb, reason, ticket])
  const signature = JSON.stringify(input)
  const current = dryRun && dryRun.signature === signature
  const missing = !registry
    ? 'a registry'
    : !repository
      ? 'a repository'
      : input.targets.length === 0
        ? 'tags or a pattern'
        : !input.reason
          ? 'a reason'
          : undefined

  const showPlan = async (event) => {
    event.preventDefault()
    if (missing) return
    setBusy(true)
    setError(undefined)
    try {
      const answer = await api('/v1/deletions', { method: 'POST', body: { ...input, dryRun: true } })
      setDryRun({ signature, plan: answer.plan, summary: answer.summary, key: crypto.randomUUID() })
    } catch (err) {
      setDryRun(undefined)
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  const file = async () => {
    if (!current) return
    setBusy(true)
    setError(undefined)
    try {
      const created = await api('/v1/deletions', {
        method: 'POST',
        body: input,
        headers: { 'idempotency-key': dryRun.key },
      })
      navigate(['requests', created.id])
    } catch (err) {
      setError(err instanceof ApiError ? err : { message: err.message })
      setBusy(false)
    }
  }

  return html`<h1>New deletion request</h1>
    <form class="new-request" onSubmit=${showPlan}>
      <div class="field">
        <label for="registry">Registry</label>
        <select id="registry" value=${registry} onChange=${(e) => setRegistry(e.currentTarget.value)}>
          ${(registries.data ?? []).map(
            (r) => html`<option key=${r.name} value=${r.name}>${r.name} (${r.health})</option>`,
          )}
        </select>
        <${ErrorNotice} error=${registries.error} />
      </div>
      <div class="field">
        <label for="repository">Repository</label>
        <input
          id="repository"
          list="repository-suggestions"
          autocomplete="off"
          value=${typed}
          onInput=${(e) => setTyped(e.currentTarget.value)}
          onChange=${(e) => setRepository(e.currentTarget.value.trim())}
        />
        <datalist id="repository-suggestions">
          ${(suggestions.data?.items ?? []).map((r) => html`<option key=${r.name} value=${r.name}></option>`)}
        </datalist>
        <button type="button" class="secondary" onClick=${() => setRepository(typed.trim())}>Show tags</button>
      </div>
      <fieldset>
        <legend>Tags</legend>
        <${TagPicker} registry=${registry} repository=${repository} selected=${selected} setSelected=${setSelected} />
        <div class="field">
          <label for="pattern">…or every tag matching a pattern</label>
          <input id="pattern" placeholder="pr-* or /^pr-\\d+$/" value=${pattern} onInput=${(e) => setPattern(e.currentTarget.value)} />
        </div>
      </fieldset>
      <fieldset>
        <legend>What to delete</legend>
        ${VERBS.map(
          (v) => html`<div class="radio" key=${v.value}>
            <input type="radio" id=${`verb-${v.value}`} name="verb" value=${v.value} checked=${verb === v.value} onChange=${() => setVerb(v.value)} />
            <label for=${`verb-${v.value}`}><strong>${v.label}</strong>: ${v.help}</label>
          </div>`,
        )}
      </fieldset>
      <div class="field">
        <label for="reason">Reason (required)</label>
        <textarea id="reason" rows="2" required maxlength="2000" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)}></textarea>
      </div>
      <div class="field">
        <label for="ticket">Ticket (optional)</label>
        <input id="ticket" maxlength="200" value=${ticket} onInput=${(e) => setTicket(e.currentTarget.value)} />
      </div>
      <div class="buttons">
        <button type="submit" disabled=${busy || Boolean(missing)}>Show plan (dry run)</button>
        ${missing ? html`<span class="muted">Still needed: ${missing}.</span>` : null}
      </div>
    </form>
    <${ErrorNotice} error=${error} title="Regent refused" />
    ${
      dryRun
        ? html`<section class="dry-run" aria-labelledby="dry-run-heading">
            <h2 id="dry-run-heading">Dry run</h2>
            <p role="status">${dryRun.summary}</p>
            ${current ? null : html`<p class="notice notice-warning">The form changed since this plan: show the plan again before requesting.</p>`}
            <${PlanView} plan=${dryRun.plan} headingLevel=${3} />
            <div class="buttons">
              <button type="button" disabled=${busy || !current || dryRun.plan.problems.length > 0} onClick=${file}>
                Request deletion
              </button>
            </div>
          </section>`
        : null
    }`
}
