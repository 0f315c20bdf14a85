// The public REST API, called with the signed-in user's bearer token: the console can do nothing
// the user could not do with curl.
import { apiBase, bearer, signOut } from './session.js'

/** An error answer: the stable REGENT_* code and the message, as the API gave them. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `the API answered ${status}`)
    this.status = status
    this.code = error?.code ?? `HTTP_${status}`
    this.details = error?.details
    this.requestId = error?.requestId
  }
}

export function apiUrl(path, query = {}) {
  const url = new URL(path.replace(/^\//, ''), apiBase)
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value))
  }
  return url
}

export async function apiFetch(path, { method = 'GET', query, body, headers = {} } = {}) {
  const res = await fetch(apiUrl(path, query), {
    method,
    headers: {
      authorization: `Bearer ${bearer()}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  if (res.ok) return res
  const answer = await res.json().catch(() => null)
  // The token ran out or was revoked: back to the sign-in page, saying why.
  if (res.status === 401) signOut('expired')
  throw new ApiError(res.status, answer?.error)
}

export async function api(path, options) {
  const res = await apiFetch(path, options)
  return res.status === 204 ? null : res.json()
}

/** Every page of a cursor-paged list, up to `max` items. */
export async function apiAll(path, { query = {}, max = 10_000 } = {}) {
  const items = []
  let cursor
  do {
    const page = await api(path, { query: { ...query, limit: 1000, cursor } })
    items.push(...page.items)
    cursor = page.nextCursor
  } while (cursor && items.length < max)
  return { items, complete: !cursor }
}

/** `repository` as one URL path segment, as the API wants it (`payments%2Fapi`). */
export const segment = (value) => encodeURIComponent(value)
