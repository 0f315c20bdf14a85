import { errors } from '../errors.js'

/**
 * Opaque page cursors: base64url of a small JSON object. Callers must not build them; a cursor that
 * does not decode to the expected shape is a 400 rather than a silently different page.
 */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

export function decodeCursor<K extends string>(
  cursor: string | undefined,
  keys: K[],
): Record<K, string> | undefined {
  if (cursor === undefined || cursor === '') return undefined
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>
    if (value && typeof value === 'object' && keys.every((k) => typeof value[k] === 'string')) {
      return value as Record<K, string>
    }
  } catch {}
  throw new errors.INVALID_CURSOR()
}
