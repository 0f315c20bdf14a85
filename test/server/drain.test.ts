import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build } from '../helper.js'

t.test('closing the app drains in-flight requests and refuses new ones', async (t) => {
  let entered!: () => void
  const inside = new Promise<void>((resolve) => {
    entered = resolve
  })
  const app = await build(t, {
    beforeReady: (app) => {
      app.get('/test/slow', { config: { public: true } }, async () => {
        entered()
        await sleep(500)
        return { done: true }
      })
    },
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }

  const slow = fetch(`http://127.0.0.1:${port}/test/slow`)
  await inside
  const closeStarted = Date.now()
  const closing = app.close()
  const res = await slow
  t.equal(res.status, 200, 'the request in flight when close began is answered')
  t.same(await res.json(), { done: true })
  await closing
  // A keep-alive socket left open would hold close() until its 72 s timeout.
  t.ok(Date.now() - closeStarted < 5000, 'close finishes promptly once the request is answered')
  await t.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'no new connections after close')
})
