import WebSocket from 'ws'

export interface SubscriptionOptions {
  port: number
  /** The `authorization` header of the upgrade request. */
  authorization: string
  query: string
  variables?: Record<string, unknown>
  /** Called once the server acknowledged the subscribe message (start the work to watch here). */
  onSubscribed?: () => void
  /** The last update wanted: the subscription ends after it. */
  until?: (data: Record<string, unknown>) => boolean
  timeoutMs?: number
}

export interface SubscriptionResult {
  /** `payload.data` of every `next` message, in order. */
  updates: Record<string, unknown>[]
  /** The payload of an `error` message, when the server refused the subscription. */
  error?: unknown
}

/**
 * One GraphQL subscription over `graphql-transport-ws` (what mercurius speaks): connection_init,
 * subscribe after the ack, collect `next` payloads until `until` says stop, an `error` arrives, or
 * the timeout passes (a rejection). The socket is always closed at the end.
 */
export async function subscribeGraphql(options: SubscriptionOptions): Promise<SubscriptionResult> {
  const ws = new WebSocket(`ws://127.0.0.1:${options.port}/graphql`, 'graphql-transport-ws', {
    headers: { authorization: options.authorization },
  })
  const updates: Record<string, unknown>[] = []
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<SubscriptionResult>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`subscription: no final update in ${options.timeoutMs ?? 20_000} ms`)),
        options.timeoutMs ?? 20_000,
      )
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })))
      ws.on('error', reject)
      ws.on('message', (raw) => {
        const message = JSON.parse(String(raw))
        if (message.type === 'connection_ack') {
          ws.send(
            JSON.stringify({
              id: '1',
              type: 'subscribe',
              payload: {
                query: options.query,
                ...(options.variables ? { variables: options.variables } : {}),
              },
            }),
          )
          options.onSubscribed?.()
        } else if (message.type === 'next') {
          const data = message.payload.data as Record<string, unknown>
          updates.push(data)
          if (options.until?.(data)) resolve({ updates })
        } else if (message.type === 'error') {
          resolve({ updates, error: message.payload })
        } else if (message.type === 'complete') {
          resolve({ updates })
        }
      })
    })
  } finally {
    clearTimeout(timer)
    ws.terminate()
  }
}
