// GraphQL subscriptions over graphql-transport-ws, the protocol Regent's /graphql speaks. A browser
// cannot set headers on a WebSocket, so the bearer token travels as a second offered subprotocol,
// `regent-bearer.<token>`; Regent answers with `graphql-transport-ws`.
import { apiBase, bearer } from './session.js'

/**
 * Subscribes and calls `onData(data)` for every update. After a dropped connection it connects
 * again (with a growing pause) and calls `onReconnect`, so the caller can catch up on what it
 * missed. Returns a function that ends the subscription.
 */
export function subscribe({ query, variables, onData, onError, onReconnect }) {
  let socket
  let stopped = false
  let attempts = 0
  let timer

  const connect = () => {
    const url = new URL('graphql', apiBase)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    socket = new WebSocket(url, ['graphql-transport-ws', `regent-bearer.${bearer()}`])
    socket.addEventListener('open', () =>
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} })),
    )
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(event.data)
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }))
        if (attempts > 0) onReconnect?.()
        attempts = 0
      } else if (message.type === 'next') {
        if (message.payload.errors?.length) onError?.(message.payload.errors[0])
        if (message.payload.data) onData(message.payload.data)
      } else if (message.type === 'error') {
        stopped = true
        onError?.(Array.isArray(message.payload) ? message.payload[0] : message.payload)
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }))
      }
    })
    socket.addEventListener('close', () => {
      if (stopped) return
      attempts += 1
      timer = setTimeout(connect, Math.min(30_000, 500 * 2 ** attempts))
    })
  }
  connect()
  return () => {
    stopped = true
    clearTimeout(timer)
    socket?.close()
  }
}
