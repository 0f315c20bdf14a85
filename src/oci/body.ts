import type { Dispatcher } from 'undici'
import { ociErrors } from './errors.js'

type Body = Dispatcher.ResponseData['body']

/**
 * Drops a body we will not read. undici's body emits RequestAbortedError when destroyed before its
 * end, and an 'error' without a listener would crash the process, hence the no-op listener.
 */
export function discard(body: Body): void {
  body.on('error', () => {})
  body.destroy()
}

/** Reads up to `max` bytes and destroys the rest: error and token bodies are small or useless. */
export async function readAtMost(body: Body, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buf = chunk as Buffer
    chunks.push(buf)
    size += buf.length
    if (size >= max) {
      discard(body)
      break
    }
  }
  return Buffer.concat(chunks, size).subarray(0, max)
}

/**
 * Reads a whole body that must not exceed `max` bytes: refused up front when its Content-Length
 * says so, and as soon as the bytes read pass `max` when it lied or sent none.
 */
export async function readCapped(
  body: Body,
  declaredLength: string | undefined,
  max: number,
  what: string,
): Promise<Buffer> {
  if (Number(declaredLength ?? 0) > max) throw new ociErrors.RESPONSE_TOO_LARGE(what, max)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > max) throw new ociErrors.RESPONSE_TOO_LARGE(what, max)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, size)
}
