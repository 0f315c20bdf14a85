import { api, segment } from '../api.js'
import {
  Bytes,
  Digest,
  ErrorNotice,
  Loading,
  Pager,
  TagTable,
  Time,
  useAsync,
  useCursorStack,
} from '../components.js'
import { html, useState } from '../html.js'
import { href, navigate } from '../router.js'

const yesNo = (value) => (value === null || value === undefined ? 'unknown' : value ? 'yes' : 'no')

function Registries() {
  const list = useAsync(() => api('/v1/registries').then((r) => r.items), [])
  return html`<h1>Registries</h1>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${
      list.data
        ? html`<table>
            <caption>Configured registries, their health and probed capabilities</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">URL</th>
                <th scope="col">Health</th>
                <th scope="col">Deletes enabled</th>
                <th scope="col">Tag delete</th>
                <th scope="col">Referrers API</th>
                <th scope="col">Catalog</th>
              </tr>
            </thead>
            <tbody>
              ${list.data.map(
                (r) => html`<tr key=${r.name}>
                  <td><a href=${href(['browse', r.name])}>${r.name}</a></td>
                  <td>${r.kind}</td>
                  <td><code>${r.url}</code></td>
                  <td><span class=${`badge health-${r.health}`}>${r.health}</span></td>
                  <td>${yesNo(r.capabilities?.deleteEnabled)}</td>
                  <td>${yesNo(r.capabilities?.tagDelete)}</td>
                  <td>${yesNo(r.capabilities?.referrersApi)}</td>
                  <td>${yesNo(r.capabilities?.catalog)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : null
    }`
}

function Repositories({ registry, prefix }) {
  const [typed, setTyped] = useState(prefix)
  const pages = useCursorStack(prefix)
  const list = useAsync(
    () =>
      api(`/v1/registries/${segment(registry)}/repositories`, {
        query: { prefix, limit: 100, cursor: pages.cursor },
      }),
    [registry, prefix, pages.cursor],
  )
  return html`<h1>Repositories in ${registry}</h1>
    <p><a href=${href(['browse'])}>All registries</a></p>
    <form class="filters" onSubmit=${(e) => {
      e.preventDefault()
      navigate(['browse', registry], { prefix: typed })
    }}>
      <label for="prefix">Name starts with</label>
      <input id="prefix" type="search" value=${typed} onInput=${(e) => setTyped(e.currentTarget.value)} />
      <button type="submit" class="secondary">Filter</button>
    </form>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${
      list.data
        ? html`<ul class="repositories">
            ${list.data.items.map(
              (r) => html`<li key=${r.name}><a href=${href(['browse', registry, r.name])}>${r.name}</a></li>`,
            )}
          </ul>
          ${list.data.items.length === 0 ? html`<p class="empty">No repositories.</p>` : null}
          <${Pager} label="Repository pages" canGoBack=${pages.canGoBack} onBack=${pages.back} nextCursor=${list.data.nextCursor} onNext=${pages.next} />`
        : null
    }`
}

function Tags({ registry, repository }) {
  const pages = useCursorStack(`${registry}/${repository}`)
  const list = useAsync(
    () =>
      api(`/v1/registries/${segment(registry)}/repositories/${segment(repository)}/tags`, {
        query: { limit: 100, cursor: pages.cursor },
      }),
    [registry, repository, pages.cursor],
  )
  return html`<h1>${repository}</h1>
    <p>
      <a href=${href(['browse', registry])}>Repositories in ${registry}</a> ·
      <a href=${href(['new'], { registry, repository })}>Request a deletion here</a>
    </p>
    ${list.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${list.error} />
    ${
      list.data
        ? html`${list.data.sharedWithComplete ? null : html`<p class="notice notice-warning">This repository has more tags than Regent resolves to find shared images: “same image as” may be incomplete.</p>`}
          <${TagTable}
            tags=${list.data.items}
            caption=${`Tags of ${repository}`}
            nameCell=${(tag) => html`<a href=${href(['browse', registry, repository, tag.name])}><code>${tag.name}</code></a>`}
          />
          <${Pager} label="Tag pages" canGoBack=${pages.canGoBack} onBack=${pages.back} nextCursor=${list.data.nextCursor} onNext=${pages.next} />`
        : null
    }`
}

function Manifest({ registry, repository, reference }) {
  const view = useAsync(
    () =>
      api(
        `/v1/registries/${segment(registry)}/repositories/${segment(repository)}/manifests/${segment(reference)}`,
      ),
    [registry, repository, reference],
  )
  const m = view.data
  return html`<h1>${repository}${reference.includes(':') ? '@' : ':'}${reference.includes(':') ? html`<${Digest} value=${reference} />` : reference}</h1>
    <p><a href=${href(['browse', registry, repository])}>All tags of ${repository}</a></p>
    ${view.loading ? html`<${Loading} />` : null}
    <${ErrorNotice} error=${view.error} />
    ${
      m
        ? html`<dl class="facts">
            <dt>Digest</dt><dd><code>${m.digest}</code></dd>
            <dt>Media type</dt><dd>${m.mediaType} (${m.kind})</dd>
            <dt>Size</dt><dd><${Bytes} value=${m.totalSize ?? m.size} /></dd>
            ${
              m.config
                ? html`<dt>Platform</dt><dd>${[m.config.os, m.config.architecture, m.config.variant].filter(Boolean).join('/') || '–'}</dd>
              <dt>Created</dt><dd><${Time} value=${m.config.created} /></dd>
              ${m.config.author ? html`<dt>Author</dt><dd>${m.config.author}</dd>` : null}`
                : null
            }
          </dl>
          ${
            m.config && Object.keys(m.config.labels).length > 0
              ? html`<h2>Labels</h2>
            <dl class="facts">${Object.entries(m.config.labels).map(([k, v]) => html`<dt key=${`k${k}`}>${k}</dt><dd key=${`v${k}`}>${v}</dd>`)}</dl>`
              : null
          }
          ${
            m.children.length > 0
              ? html`<h2>Index children</h2>
            <table><caption>Manifests this index lists</caption>
              <thead><tr><th scope="col">Digest</th><th scope="col">Platform</th><th scope="col">Size</th></tr></thead>
              <tbody>${m.children.map(
                (c) => html`<tr key=${c.digest}>
                <td><a href=${href(['browse', registry, repository, c.digest])}><${Digest} value=${c.digest} /></a></td>
                <td>${c.platform ? [c.platform.os, c.platform.architecture, c.platform.variant].filter(Boolean).join('/') : '–'}</td>
                <td><${Bytes} value=${c.size} /></td></tr>`,
              )}</tbody>
            </table>`
              : null
          }
          ${
            m.layers.length > 0
              ? html`<h2>Layers</h2>
            <table><caption>Layers, bottom first</caption>
              <thead><tr><th scope="col">Digest</th><th scope="col">Media type</th><th scope="col">Size</th></tr></thead>
              <tbody>${m.layers.map((l, i) => html`<tr key=${i}><td><${Digest} value=${l.digest} /></td><td>${l.mediaType}</td><td><${Bytes} value=${l.size} /></td></tr>`)}</tbody>
            </table>`
              : null
          }
          ${
            m.history.length > 0
              ? html`<h2>History</h2>
            <table class="history"><caption>How the image was built, like docker history (newest last)</caption>
              <thead><tr><th scope="col">Created</th><th scope="col">Created by</th><th scope="col">Size</th></tr></thead>
              <tbody>${m.history.map((h, i) => html`<tr key=${i}><td><${Time} value=${h.created} /></td><td><code>${h.createdBy ?? ''}</code>${h.comment ? html` <span class="muted">${h.comment}</span>` : null}</td><td>${h.emptyLayer ? html`<span class="muted">no layer</span>` : html`<${Bytes} value=${h.size} />`}</td></tr>`)}</tbody>
            </table>`
              : null
          }
          ${
            m.referrers?.items.length
              ? html`<h2>Referrers</h2>
            <table><caption>Signatures, SBOMs and other artifacts about this manifest (via ${m.referrers.via})</caption>
              <thead><tr><th scope="col">Digest</th><th scope="col">Artifact type</th><th scope="col">Size</th></tr></thead>
              <tbody>${m.referrers.items.map((r) => html`<tr key=${r.digest}><td><${Digest} value=${r.digest} /></td><td>${r.artifactType ?? r.mediaType}</td><td><${Bytes} value=${r.size} /></td></tr>`)}</tbody>
            </table>`
              : null
          }`
        : null
    }`
}

export function BrowsePage({ rest, route }) {
  const [registry, repository, reference] = rest
  if (reference)
    return html`<${Manifest} registry=${registry} repository=${repository} reference=${reference} />`
  if (repository) return html`<${Tags} registry=${registry} repository=${repository} />`
  if (registry) return html`<${Repositories} registry=${registry} prefix=${route.query.prefix ?? ''} />`
  return html`<${Registries} />`
}
