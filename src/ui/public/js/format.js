// Wording shared by the pages.

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '–'
  if (Math.abs(bytes) < 1024) return `${bytes} B`
  if (Math.abs(bytes) < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`
  if (Math.abs(bytes) < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
}

export function formatTime(iso) {
  if (!iso) return '–'
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString()
}

export function shortDigest(digest) {
  if (!digest) return '–'
  const [algorithm, hex = ''] = digest.split(':')
  return `${algorithm}:${hex.slice(0, 12)}`
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`
}

export function percent(share) {
  return `${Math.round(share * 100)}%`
}

export const stateLabel = (state) => String(state ?? '').replace(/_/g, ' ')
