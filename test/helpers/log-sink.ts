import { Writable } from 'node:stream'

/** A log destination that keeps every line, to assert on what was (not) logged. */
export function logSink(): { lines: string[]; sink: Writable } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString())
      done()
    },
  })
  return { lines, sink }
}
