// Hash routes (`#/requests/<id>?…`): the server serves one page, and a reload or a shared link
// lands on the same view.
import { useEffect, useState } from './html.js'

export function parseHash(hash) {
  const raw = hash.replace(/^#/, '') || '/'
  const [path, search = ''] = raw.split('?')
  return {
    path,
    segments: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: Object.fromEntries(new URLSearchParams(search)),
  }
}

export function href(segments, query = {}) {
  const path = `#/${segments.map((s) => encodeURIComponent(s)).join('/')}`
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value))
  }
  const search = params.toString()
  return search ? `${path}?${search}` : path
}

export function navigate(segments, query) {
  window.location.hash = href(segments, query)
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(window.location.hash))
  useEffect(() => {
    const changed = () => setRoute(parseHash(window.location.hash))
    window.addEventListener('hashchange', changed)
    // Effects run after the first paint: a hash set before that would otherwise go unnoticed.
    changed()
    return () => window.removeEventListener('hashchange', changed)
  }, [])
  return route
}
