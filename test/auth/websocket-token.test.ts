import t from 'tap'
import WebSocket from 'ws'
import { build, signToken } from '../helper.js'

t.test(
  'a browser passes its token as a WebSocket subprotocol; Regent answers graphql-transport-ws',
  async (t) => {
    const app = await build(t)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    const open = (protocols: string[]) =>
      new Promise<{ protocol?: string; status?: number }>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/graphql`, protocols)
        ws.on('open', () => {
          resolve({ protocol: ws.protocol })
          ws.terminate()
        })
        ws.on('unexpected-response', (req, res) => {
          resolve({ status: res.statusCode ?? 0 })
          req.destroy()
        })
        ws.on('error', () => resolve({}))
      })
    const token = signToken({ sub: 'vic', groups: ['payments'], roles: ['viewer'] })
    t.same(await open(['graphql-transport-ws', `regent-bearer.${token}`]), {
      protocol: 'graphql-transport-ws',
    })
    t.same(await open(['graphql-transport-ws', 'regent-bearer.not-a-token']), { status: 401 })
    t.same(await open(['graphql-transport-ws']), { status: 401 }, 'no token at all')
  },
)
