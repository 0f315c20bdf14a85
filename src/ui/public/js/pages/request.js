import { api, apiAll, segment } from '../api.js'
import {
  ApprovalRule,
  Digest,
  ErrorNotice,
  Fact,
  Loading,
  PlanView,
  StateBadge,
  Time,
  useAsync,
} from '../components.js'
import { plural, stateLabel } from '../format.js'
import { html, useEffect, useRef, useState } from '../html.js'
import { subscribe } from '../live.js'
import { href, navigate } from '../router.js'

/** States in which a worker moves the request on by itself: the page follows them live. */
const MOVING = new Set(['approved', 'queued', 'running'])
/** While live, the page also reads the request this often, in case an update was missed. */
const CATCH_UP_MS = 5000

const LIVE_QUERY = `subscription ($id: ID!) {
  deletionUpdated(id: $id) {
    id state summary planHash updatedAt
    progress { total pending deleted skipped failed }
  }
}`

/** Known outcomes in words; any other outcome is shown by its code and the item's error text. */
const OUTCOMES = {
  deleted: 'deleted',
  already_deleted: 'already gone (deleted by an earlier attempt)',
  tag_moved: 'skipped: the tag points at another image now',
  tag_gone: 'skipped: the tag no longer exists',
  plan_changed: 'not executed: the registry changed since the plan was approved',
  tag_taken: 'not restored: the tag points at another image now',
}

function ItemOutcomes({ items }) {
  return html`<table class="items">
    <caption>Per-item outcomes</caption>
    <thead>
      <tr>
        <th scope="col">Repository</th>
        <th scope="col">Tag</th>
        <th scope="col">Digest</th>
        <th scope="col">Action</th>
        <th scope="col">State</th>
        <th scope="col">Outcome</th>
      </tr>
    </thead>
    <tbody>
      ${items.map(
        (item) => html`<tr key=${item.position} data-outcome=${item.outcome ?? ''}>
          <td>${item.repository}</td>
          <td>${item.tag ? html`<code>${item.tag}</code>` : html`<span class="muted">–</span>`}</td>
          <td><${Digest} value=${item.digest} /></td>
          <td>${item.action}</td>
          <td>
            <${StateBadge} state=${item.state} />
            ${item.restoreOutcome ? html` <span class="badge">restore: ${item.restoreOutcome}</span>` : null}
            ${item.restoreNote ? html`<p class="muted">${item.restoreNote}</p>` : null}
          </td>
          <td>
            ${item.outcome ? html`<code>${item.outcome}</code>` : html`<span class="muted">–</span>`}
            ${item.outcome && OUTCOMES[item.outcome] ? html` <span>${OUTCOMES[item.outcome]}</span>` : null}
            ${item.error ? html`<p class="item-error">${item.errorCode ? html`<code>${item.errorCode}</code> ` : null}${item.error}</p>` : null}
          </td>
        </tr>`,
      )}
    </tbody>
  </table>`
}

/** Fields of a request this console knows; any other (from a newer Regent) is shown by name. */
const KNOWN = new Set([
  'id',
  'registry',
  'verb',
  'state',
  'reason',
  'ticket',
  'requester',
  'targets',
  'plan',
  'planHash',
  'approvals',
  'progress',
  'jobId',
  'expiresAt',
  'createdAt',
  'updatedAt',
  'summary',
  'view',
])

/** A button that asks once more before doing something that cannot be taken back. */
function ConfirmButton({ label, confirmLabel, question, onConfirm, busy, className = 'secondary' }) {
  const [asking, setAsking] = useState(false)
  if (!asking)
    return html`<button type="button" class=${className} disabled=${busy} onClick=${() => setAsking(true)}>
      ${label}
    </button>`
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span>${question}</span>
    <button type="button" class=${className} disabled=${busy} onClick=${() => {
      setAsking(false)
      onConfirm()
    }}>
      ${confirmLabel}
    </button>
    <button type="button" class="secondary" onClick=${() => setAsking(false)}>Keep it</button>
  </span>`
}

function Decision({ deletion, shownPlanHash, verdict, onDecided, onLoadCurrent }) {
  const [comment, setComment] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState()
  if (deletion.state !== 'awaiting_approval') return null
  if (!verdict.allowed)
    return html`<section aria-labelledby="decide" class="decision">
      <h2 id="decide">Decision</h2>
      <p class="muted">You cannot decide on this request: ${verdict.reason}.</p>
    </section>`

  const decide = async (decision) => {
    setBusy(true)
    setError(undefined)
    try {
      // The hash of the plan on this page: if the request's plan is another one by now, Regent
      // refuses the decision instead of applying it to a plan nobody here has seen.
      const answer = await api(`/v1/deletions/${segment(deletion.id)}/approvals`, {
        method: 'POST',
        body: { decision, planHash: shownPlanHash, ...(comment.trim() ? { comment: comment.trim() } : {}) },
      })
      setComment('')
      onDecided(answer, decision)
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  return html`<section aria-labelledby="decide" class="decision">
    <h2 id="decide">Decision</h2>
    <p>You decide on the plan shown below (plan hash <code>${shownPlanHash.slice(0, 12)}</code>).</p>
    <form onSubmit=${(e) => e.preventDefault()}>
      <label for="comment">Comment (optional)</label>
      <textarea id="comment" rows="2" maxlength="2000" value=${comment} onInput=${(e) => setComment(e.currentTarget.value)}></textarea>
      <div class="buttons">
        <button type="button" disabled=${busy} onClick=${() => decide('approve')}>Approve</button>
        <button type="button" class="danger" disabled=${busy} onClick=${() => decide('reject')}>Reject</button>
      </div>
    </form>
    ${
      error?.code === 'REGENT_PLAN_CHANGED'
        ? html`<div role="alert" class="notice notice-error plan-changed">
            <p><strong>The plan changed since this page was loaded, so your decision was not recorded.</strong></p>
            <p><code class="error-code">${error.code}</code> <span class="error-message">${error.message}</span></p>
            <p>Review the current plan before deciding.</p>
            <button type="button" class="secondary" onClick=${() => {
              setError(undefined)
              onLoadCurrent()
            }}>
              Load the current plan
            </button>
          </div>`
        : html`<${ErrorNotice} error=${error} title="The decision was refused" />`
    }
  </section>`
}

export function RequestPage({ rest }) {
  const [id] = rest
  const request = useAsync(() => api(`/v1/deletions/${segment(id)}`), [id])
  const [deletion, setDeletion] = useState()
  // The plan on the page stays the one first shown: a decision is about what the person read.
  const [shownPlan, setShownPlan] = useState()
  const items = useAsync(() => apiAll(`/v1/deletions/${segment(id)}/items`), [id])
  const actions = useAsync(() => api(`/v1/deletions/${segment(id)}/actions`), [id])
  const [live, setLive] = useState(false)
  const [liveError, setLiveError] = useState()
  const [notice, setNotice] = useState()
  const [busy, setBusy] = useState(false)
  const [actionError, setActionError] = useState()

  useEffect(() => {
    if (!request.data) return
    setDeletion(request.data)
    setShownPlan((plan) => plan ?? request.data.plan)
  }, [request.data])

  const state = deletion?.state
  const reloadAll = () => {
    request.reload()
    items.reload()
    actions.reload()
  }

  // Live progress while a worker executes the request: each update from the GraphQL subscription
  // replaces state and counts at once; items and allowed actions are read again.
  useEffect(() => {
    if (!MOVING.has(state)) return
    setLive(true)
    setLiveError(undefined)
    const stop = subscribe({
      query: LIVE_QUERY,
      variables: { id },
      onData: (data) => {
        const update = data.deletionUpdated
        setDeletion((d) => ({ ...d, ...update }))
        items.reload()
      },
      onError: (err) => setLiveError({ code: err.extensions?.code, message: err.message }),
      onReconnect: reloadAll,
    })
    const timer = setInterval(request.reload, CATCH_UP_MS)
    return () => {
      stop()
      clearInterval(timer)
      setLive(false)
    }
  }, [id, MOVING.has(state)])

  // Execution ended (seen live or by the catch-up read): outcomes and what may follow are final now.
  const wasMoving = useRef(false)
  useEffect(() => {
    if (wasMoving.current && !MOVING.has(state)) {
      items.reload()
      actions.reload()
    }
    wasMoving.current = MOVING.has(state)
  }, [state])

  // Swapping the plan on the page is the person's choice; reloading the page would sign them out.
  const loadCurrentPlan = async () => {
    try {
      const fresh = await api(`/v1/deletions/${segment(id)}`)
      setDeletion(fresh)
      setShownPlan(fresh.plan)
      items.reload()
      actions.reload()
    } catch (err) {
      setActionError(err)
    }
  }

  // Filing again creates a new request (fresh plan, fresh approval): the page moves to it.
  const replan = async () => {
    setBusy(true)
    setActionError(undefined)
    try {
      const created = await api(`/v1/deletions/${segment(id)}/replan`, { method: 'POST', body: {} })
      navigate(['requests', created.id])
    } catch (err) {
      setActionError(err)
    } finally {
      setBusy(false)
    }
  }

  const act = async (path, what) => {
    setBusy(true)
    setActionError(undefined)
    try {
      const answer = await api(`/v1/deletions/${segment(id)}/${path}`, { method: 'POST', body: {} })
      setDeletion(answer)
      setNotice(`${what}: the request is ${stateLabel(answer.state)}.`)
      items.reload()
      actions.reload()
    } catch (err) {
      setActionError(err)
    } finally {
      setBusy(false)
    }
  }

  if (request.error && !deletion)
    return html`<h1>Deletion request</h1><${ErrorNotice} error=${request.error} />`
  if (!deletion || !shownPlan) return html`<h1>Deletion request</h1><${Loading} />`
  const d = deletion
  const done = d.progress.deleted + d.progress.skipped + d.progress.failed
  const verdicts = actions.data
  return html`<h1>Deletion request <code>${d.id.slice(0, 8)}</code> <${StateBadge} state=${d.state} /></h1>
    <p class="summary">${d.summary}</p>
    <p role="status" class="live-status">${notice ?? ''}</p>
    <${ErrorNotice} error=${actionError} />
    <dl class="facts">
      <dt>Requested by</dt>
      <dd>${d.requester.person}${d.requester.onBehalfOf ? ` (through ${d.requester.subject})` : ''}</dd>
      <dt>Verb</dt>
      <dd>${d.verb} in ${d.registry}</dd>
      <dt>Reason</dt>
      <dd>${d.reason}</dd>
      ${d.ticket ? html`<dt>Ticket</dt><dd>${d.ticket}</dd>` : null}
      <dt>Filed</dt>
      <dd><${Time} value=${d.createdAt} /></dd>
      ${d.expiresAt && d.state === 'awaiting_approval' ? html`<dt>Expires</dt><dd><${Time} value=${d.expiresAt} /></dd>` : null}
      <dt>Targets</dt>
      <dd>
        <ul class="inline-list">
          ${d.targets.map(
            (t, i) =>
              html`<li key=${i}><code>${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}${t.tagPattern ? ` ~ ${t.tagPattern}` : ''}</code></li>`,
          )}
        </ul>
      </dd>
      ${Object.entries(d)
        .filter(([key]) => !KNOWN.has(key))
        .map(
          ([key, value]) =>
            html`<dt key=${`t-${key}`}>${key}</dt><dd key=${`d-${key}`}><${Fact} value=${value} /></dd>`,
        )}
    </dl>
    <p><a href=${href(['audit'], { deletionId: d.id })}>Audit events of this request</a></p>

    <section aria-labelledby="approvals">
      <h2 id="approvals">Approvals</h2>
      <${ApprovalRule} required=${d.approvals.required} />
      ${d.state === 'awaiting_approval' ? html`<p>${plural(d.approvals.missing, 'more approval')} needed${d.approvals.missingAdmins > 0 ? `, ${d.approvals.missingAdmins} of them from admins` : ''}.</p>` : null}
      ${
        d.approvals.given.length > 0
          ? html`<ul class="given">
              ${d.approvals.given.map(
                (a) => html`<li key=${a.approver + a.at}>
                  <strong>${a.approver}</strong> (${a.as}) ${a.decision === 'approve' ? 'approved' : 'rejected'}
                  <${Time} value=${a.at} />${a.comment ? html`: “${a.comment}”` : null}
                </li>`,
              )}
            </ul>`
          : html`<p class="muted">Nobody has decided yet.</p>`
      }
    </section>

    ${
      verdicts
        ? html`<${Decision}
      deletion=${d}
      shownPlanHash=${shownPlan.hash}
      onLoadCurrent=${loadCurrentPlan}
      verdict=${verdicts.approve}
      onDecided=${(answer, decision) => {
        setDeletion(answer)
        setNotice(
          decision === 'approve' ? `Approved: the request is ${stateLabel(answer.state)}.` : 'Rejected.',
        )
        items.reload()
        actions.reload()
      }}
    />`
        : null
    }

    ${
      d.progress.total > 0 &&
      (done > 0 || !['awaiting_approval', 'rejected', 'cancelled', 'expired'].includes(d.state))
        ? html`<section aria-labelledby="progress">
            <h2 id="progress">Execution</h2>
            <p>
              <label for="progress-bar">${done} of ${plural(d.progress.total, 'item')} done</label>
              <progress id="progress-bar" max=${d.progress.total} value=${done}></progress>
            </p>
            <p class="counts">
              ${d.progress.deleted} deleted, ${d.progress.skipped} skipped, ${d.progress.failed} failed,
              ${d.progress.pending} pending.
              ${live ? html` <span class="badge live">live</span>` : null}
            </p>
            <${ErrorNotice} error=${liveError} title="Live updates stopped" />
            ${items.data && items.data.items.length > 0 ? html`<${ItemOutcomes} items=${items.data.items} />` : null}
            ${items.data && !items.data.complete ? html`<p class="muted">Only the first ${items.data.items.length} items are shown.</p>` : null}
          </section>`
        : null
    }

    ${
      verdicts &&
      (
        verdicts.retry.allowed ||
          verdicts.restore.allowed ||
          verdicts.cancel.allowed ||
          verdicts.replan?.allowed
      )
        ? html`<section aria-labelledby="more-actions">
            <h2 id="more-actions">Actions</h2>
            <div class="buttons">
              ${verdicts.retry.allowed ? html`<button type="button" disabled=${busy} onClick=${() => act('retry', 'Retrying the failed items')}>Retry failed items</button>` : null}
              ${verdicts.restore.allowed ? html`<${ConfirmButton} label="Restore…" confirmLabel="Restore" question="Push the deleted manifests back and re-point their tags?" busy=${busy} onConfirm=${() => act('restore', 'Restored')} />` : null}
              ${verdicts.replan?.allowed ? html`<${ConfirmButton} label="File again…" confirmLabel="File again" question="File this request again with a fresh plan of what the registry holds now, for a fresh approval?" busy=${busy} onConfirm=${replan} />` : null}
              ${verdicts.cancel.allowed ? html`<${ConfirmButton} label="Cancel request…" confirmLabel="Cancel request" className="danger" question="Cancel this request for good?" busy=${busy} onConfirm=${() => act('cancel', 'Cancelled')} />` : null}
            </div>
          </section>`
        : null
    }

    ${
      d.planHash !== shownPlan.hash
        ? html`<div role="alert" class="notice notice-warning">
            <p>The request’s plan changed since this page was loaded (plan hash now <code>${d.planHash.slice(0, 12)}</code>).</p>
            <button type="button" class="secondary" onClick=${loadCurrentPlan}>Show the current plan</button>
          </div>`
        : null
    }
    <${PlanView} plan=${shownPlan} showApprovals=${false} />
    <${ErrorNotice} error=${items.error ?? actions.error} title="Part of this page could not be loaded" />`
}
