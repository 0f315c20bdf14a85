// Pieces every page uses: loading and error states, values, pagers, and the plan of a deletion.
import { formatBytes, formatTime, percent, plural, shortDigest, stateLabel } from './format.js'
import { html, useCallback, useEffect, useRef, useState } from './html.js'

/** Runs `load` when `deps` change; `reload` runs it again. Answers of an older run are dropped. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ loading: true, data: undefined, error: undefined })
  const generation = useRef(0)
  const run = useCallback(() => {
    const mine = ++generation.current
    setState((s) => ({ ...s, loading: true, error: undefined }))
    load().then(
      (data) => mine === generation.current && setState({ loading: false, data, error: undefined }),
      (error) => mine === generation.current && setState({ loading: false, data: undefined, error }),
    )
  }, deps)
  useEffect(run, [run])
  return { ...state, reload: run }
}

/** `value` once it has stopped changing for `ms`: typing does not send a request per key. */
export function useDebounced(value, ms = 300) {
  const [settled, setSettled] = useState(value)
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms)
    return () => clearTimeout(timer)
  }, [value, ms])
  return settled
}

export function Loading({ what = 'Loading' }) {
  return html`<p role="status" class="muted">${what}…</p>`
}

/** An API refusal as the API gave it: the stable code and the message. */
export function ErrorNotice({ error, title = 'That did not work' }) {
  if (!error) return null
  return html`<div role="alert" class="notice notice-error">
    <p><strong>${title}</strong></p>
    <p>
      ${error.code ? html`<code class="error-code">${error.code}</code> ` : null}
      <span class="error-message">${error.message}</span>
    </p>
  </div>`
}

export function Time({ value }) {
  return value ? html`<time datetime=${value}>${formatTime(value)}</time>` : html`<span>–</span>`
}

export function Digest({ value }) {
  return html`<code class="digest" title=${value}>${shortDigest(value)}</code>`
}

export function Bytes({ value }) {
  return html`<span class="bytes">${formatBytes(value)}</span>`
}

export function StateBadge({ state }) {
  return html`<span class=${`badge state-${state}`}>${stateLabel(state)}</span>`
}

export function TagList({ tags }) {
  if (!tags || tags.length === 0) return html`<span class="muted">none</span>`
  return html`<ul class="inline-list">
    ${tags.map((tag) => html`<li key=${tag}><code>${tag}</code></li>`)}
  </ul>`
}

/** Older/newer pages over cursor pagination; the page keeps the stack of cursors it came through. */
export function Pager({ label, canGoBack, onBack, nextCursor, onNext }) {
  if (!canGoBack && !nextCursor) return null
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" class="secondary" disabled=${!canGoBack} onClick=${onBack}>Previous page</button>
    <button type="button" class="secondary" disabled=${!nextCursor} onClick=${() => onNext(nextCursor)}>
      Next page
    </button>
  </nav>`
}

/** Cursor paging state for a list: the cursor of the page shown and the ones before it. */
export function useCursorStack(resetKey) {
  const [stack, setStack] = useState([])
  useEffect(() => setStack([]), [resetKey])
  return {
    cursor: stack.at(-1),
    canGoBack: stack.length > 0,
    back: () => setStack((s) => s.slice(0, -1)),
    next: (cursor) => setStack((s) => [...s, cursor]),
  }
}

/** Any value, readably: the console shows facts it does not know yet instead of hiding them. */
export function Fact({ value }) {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`
  if (typeof value === 'object') return html`<code class="json">${JSON.stringify(value)}</code>`
  return html`<span>${String(value)}</span>`
}

export function ApprovalRule({ required }) {
  const from = required.from.join(' or ') || 'nobody'
  return html`<div class="approval-rule">
    <p>
      ${required.count === 0 ? 'No approval needed.' : `${plural(required.count, 'approval')} from ${from}`}
      ${required.adminCount > 0 ? html`, at least ${plural(required.adminCount, 'admin')}` : null}
    </p>
    ${
      required.reasons.length > 0
        ? html`<ul class="reasons">
            ${required.reasons.map((reason) => html`<li key=${reason}>${reason}</li>`)}
          </ul>`
        : null
    }
  </div>`
}

const ITEM_FIELDS = new Set([
  'repository',
  'tag',
  'digest',
  'mediaType',
  'action',
  'vanishingTags',
  'untagMethod',
  'bytes',
  'protection',
  'note',
])
const ACTIONS = {
  untag: 'remove the tag',
  'delete-manifest': 'delete the manifest',
  'delete-child': 'delete an index child',
  'delete-referrer': 'delete a referrer',
}

function groupBy(items, keyOf) {
  const groups = new Map()
  for (const item of items) {
    const key = keyOf(item)
    if (!groups.has(key)) groups.set(key, [])
    groups.get(key).push(item)
  }
  return [...groups]
}

function Protection({ protection }) {
  if (!protection || protection.level === 'none') return html`<span class="muted">none</span>`
  return html`<span class=${`badge protection-${protection.level}`}>${protection.level}</span>
    ${protection.rule ? html` <span>${protection.rule}</span>` : null}
    ${protection.tag ? html` (<code>${protection.tag}</code>)` : null}`
}

function PlanItemRow({ item }) {
  const extra = Object.entries(item).filter(([key]) => !ITEM_FIELDS.has(key))
  return html`<tr>
    <td>${ACTIONS[item.action] ?? item.action}${item.untagMethod ? html`<br /><span class="muted">method: ${item.untagMethod}</span>` : null}</td>
    <td>${item.tag ? html`<code>${item.tag}</code>` : html`<span class="muted">by digest</span>`}</td>
    <td class="vanishing"><${TagList} tags=${item.vanishingTags} /></td>
    <td><${Protection} protection=${item.protection} /></td>
    <td>
      ${item.note ? html`<p>${item.note}</p>` : null}
      ${extra.map(
        ([key, value]) =>
          html`<p key=${key}><span class="fact-name">${key}:</span> <${Fact} value=${value} /></p>`,
      )}
    </td>
  </tr>`
}

/**
 * The plan of a deletion, grouped by repository and digest: every tag that vanishes with each
 * digest, index children and referrers, protections and holds, bytes, and any fact a newer Regent
 * adds to plan items (shown by name rather than dropped).
 */
export function PlanView({ plan, headingLevel = 2, showApprovals = true }) {
  const H = `h${headingLevel}`
  const H2 = `h${headingLevel + 1}`
  const H3 = `h${headingLevel + 2}`
  const repositories = new Map(plan.repositories.map((r) => [r.repository, r]))
  return html`<section class="plan" aria-label="Plan">
    <${H}>Plan</${H}>
    <p>
      ${plural(plan.items.length, 'item')} in ${plan.registry}, ${plan.verb};
      about <${Bytes} value=${plan.bytesFreed} /> freed by the next garbage collection.
      Plan hash <code title=${plan.hash}>${plan.hash.slice(0, 12)}</code>.
    </p>
    ${
      plan.problems.length > 0
        ? html`<div class="notice notice-error" role="alert">
            <p><strong>This plan is refused:</strong></p>
            <ul>
              ${plan.problems.map((p) => html`<li key=${p.message}><code>${p.code}</code> ${p.message}</li>`)}
            </ul>
          </div>`
        : null
    }
    ${
      plan.warnings.length > 0
        ? html`<div class="notice notice-warning">
            <ul>
              ${plan.warnings.map((w) => html`<li key=${w}>${w}</li>`)}
            </ul>
          </div>`
        : null
    }
    ${groupBy(plan.items, (item) => item.repository).map(([repository, items]) => {
      const info = repositories.get(repository)
      return html`<section class="plan-repository" key=${repository}>
        <${H2}>${repository}</${H2}>
        ${
          info
            ? html`<p class="muted">
                ${`${info.itemsInRepo} of ${plural(info.totalTags, 'tag')} vanish `}
                ${`(${percent(info.totalTags > 0 ? info.itemsInRepo / info.totalTags : 1)} of the repository); `}
                ${`owned by ${info.owningTeams.join(', ') || 'no team'}`}
              </p>`
            : null
        }
        ${groupBy(items, (item) => item.digest).map(
          ([digest, sameDigest]) => html`<div class="plan-digest" key=${digest}>
            <${H3}><code title=${digest}>${shortDigest(digest)}</code></${H3}>
            <p class="muted">${sameDigest[0].mediaType}; <${Bytes} value=${sameDigest[0].bytes} /></p>
            <table>
              <thead>
                <tr>
                  <th scope="col">Action</th>
                  <th scope="col">Target tag</th>
                  <th scope="col">Tags that vanish</th>
                  <th scope="col">Protection</th>
                  <th scope="col">Notes</th>
                </tr>
              </thead>
              <tbody>
                ${sameDigest.map((item, i) => html`<${PlanItemRow} key=${`${item.tag}-${i}`} item=${item} />`)}
              </tbody>
            </table>
          </div>`,
        )}
      </section>`
    })}
    ${
      plan.kept?.length > 0
        ? html`<section class="plan-kept" aria-label="Kept">
            <${H2}>Reached but kept</${H2}>
            <table>
              <caption>Manifests the request reaches but leaves alone, and why</caption>
              <thead>
                <tr>
                  <th scope="col">Repository</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Tags</th>
                  <th scope="col">Why</th>
                </tr>
              </thead>
              <tbody>
                ${plan.kept.map(
                  (k) => html`<tr key=${k.repository + k.digest}>
                    <td>${k.repository}</td>
                    <td><${Digest} value=${k.digest} /></td>
                    <td><${TagList} tags=${k.tags} /></td>
                    <td>${k.reason}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </section>`
        : null
    }
    ${
      showApprovals
        ? html`<section class="plan-approvals" aria-label="Approval rule">
            <${H2}>Approval rule</${H2}>
            <${ApprovalRule} required=${plan.approvals} />
          </section>`
        : null
    }
  </section>`
}

function Platforms({ platforms }) {
  if (!platforms?.length) return html`<span class="muted">–</span>`
  return html`<ul class="inline-list">
    ${platforms.map(
      (p) => html`<li key=${p.digest}>${[p.os, p.architecture, p.variant].filter(Boolean).join('/')}</li>`,
    )}
  </ul>`
}

const TAG_FIELDS = new Set([
  'name',
  'digest',
  'mediaType',
  'kind',
  'size',
  'created',
  'platforms',
  'sharedWith',
])

/**
 * Tags with digest, size, created time, platforms, the other tags on the same image, and any fact
 * a newer Regent adds (in-use markers, for one). `nameCell` renders the first column: a link when
 * browsing, a checkbox when picking.
 */
export function TagTable({ tags, caption, nameCell }) {
  return html`<div class="table-scroll">
    <table class="tags">
      <caption>${caption}</caption>
      <thead>
        <tr>
          <th scope="col">Tag</th>
          <th scope="col">Digest</th>
          <th scope="col">Kind</th>
          <th scope="col">Size</th>
          <th scope="col">Created</th>
          <th scope="col">Platforms</th>
          <th scope="col">Same image as</th>
          <th scope="col">Other facts</th>
        </tr>
      </thead>
      <tbody>
        ${tags.map(
          (tag) => html`<tr key=${tag.name}>
            <td>${nameCell(tag)}</td>
            <td><${Digest} value=${tag.digest} /></td>
            <td>${tag.kind}</td>
            <td><${Bytes} value=${tag.size} /></td>
            <td><${Time} value=${tag.created} /></td>
            <td><${Platforms} platforms=${tag.platforms} /></td>
            <td><${TagList} tags=${tag.sharedWith} /></td>
            <td>
              ${Object.entries(tag)
                .filter(([key]) => !TAG_FIELDS.has(key))
                .map(
                  ([key, value]) =>
                    html`<p key=${key}><span class="fact-name">${key}:</span> <${Fact} value=${value} /></p>`,
                )}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`
}

/** Blast radius in one line: items, the largest share of one repository's tags, the teams. */
export function BlastRadius({ plan }) {
  const widest = plan.repositories.reduce(
    (best, r) => {
      const share = r.totalTags > 0 ? r.itemsInRepo / r.totalTags : 1
      return share > best.share ? { share, repository: r.repository } : best
    },
    { share: 0, repository: '' },
  )
  const teams = [...new Set(plan.repositories.flatMap((r) => r.owningTeams))]
  return html`<span class="blast-radius">
    ${plural(plan.items.length, 'item')}; up to ${percent(widest.share)} of the tags of ${widest.repository || 'a repository'};
    teams: ${teams.join(', ') || 'none'}
  </span>`
}

export { stateLabel }
