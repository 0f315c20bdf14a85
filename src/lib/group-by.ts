/**
 * `items` grouped by `keyOf`, groups and their members in first-seen order. (`Map.groupBy` arrives
 * with Node 21; this runs on 20.) Each item is appended once, so it stays linear for requests of
 * thousands of items where copying the group per item would be quadratic.
 */
export function groupBy<T, K>(items: Iterable<T>, keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>()
  for (const item of items) {
    const key = keyOf(item)
    const group = groups.get(key)
    if (group) group.push(item)
    else groups.set(key, [item])
  }
  return groups
}
