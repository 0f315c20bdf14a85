import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import type { AppOverrides } from '../app-options.js'
import type { Config } from '../config.js'
import { AJV_OPTIONS } from '../lib/validate.js'
import { clientErrorHandler, frameworkErrors, MAX_PARAM_LENGTH } from './error-handler.js'

/** Request ids from callers are kept so a chatops bot can follow its call through our logs. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Paths, headers and fields that may hold credentials: never written to logs. */
export const LOG_REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'req.headers["x-slack-signature"]',
  'req.headers["x-regent-event-secret"]',
  'headers.authorization',
  '*.password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.signingSecret',
  '*.botToken',
]

/** A token in a query string (only a WebSocket client sends one) is cut out of logged URLs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, '$1[redacted]')
}

/** Fastify's request serializer, with the URL redacted. */
export const LOG_SERIALIZERS = {
  req(request: {
    method: string
    url: string
    host?: string
    ip?: string
    socket?: { remotePort?: number }
  }) {
    return {
      method: request.method,
      url: redactUrl(request.url),
      host: request.host,
      remoteAddress: request.ip,
      remotePort: request.socket?.remotePort,
    }
  },
}

/**
 * The Fastify instance every feature registers into: the logger (with credentials redacted), request
 * ids, limits, Ajv options, and answers that ask keep-alive clients to go while the app closes.
 */
export function createFastify(config: Config, overrides: AppOverrides): FastifyInstance {
  const logger = overrides.logger ?? false
  const app = Fastify({
    // Whoever made the logger, requests are logged through the redacting serializer.
    ...(overrides.loggerInstance
      ? { loggerInstance: overrides.loggerInstance.child({}, { serializers: LOG_SERIALIZERS }) }
      : {
          logger:
            logger && typeof logger === 'object'
              ? { ...logger, serializers: { ...logger.serializers, ...LOG_SERIALIZERS } }
              : logger,
        }),
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    trustProxy: config.trustProxy,
    bodyLimit: 1024 * 1024,
    // A repository name is one URL-encoded path segment of up to 255 characters.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    ajv: { customOptions: AJV_OPTIONS },
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  // While closing, answers to requests still in flight ask the client to close its connection;
  // otherwise a keep-alive socket would hold close() open until it times out (72 s by default).
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })

  return app as unknown as FastifyInstance
}
