import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { ErrorBodySchema } from './error-schema.js'

/**
 * The REST contract is generated from the route schemas: `npm run openapi` writes openapi.yaml and
 * CI fails when the committed file differs. Served at /openapi.json and, for people, /docs.
 */
export default fp(
  async (app) => {
    app.addSchema(ErrorBodySchema)
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Regent',
          description:
            'Registry admin service: browse container registries and delete images safely, with governance, durable jobs, garbage collection and a tamper-evident audit log.',
          version: '0.1.0',
        },
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            slackSignature: {
              type: 'apiKey',
              in: 'header',
              name: 'X-Slack-Signature',
              description: 'Slack request signing (v0 HMAC-SHA256 with X-Slack-Request-Timestamp)',
            },
            // Registries posting notifications cannot get a JWT: they send a per-registry secret.
            registryEventSecret: { type: 'apiKey', in: 'header', name: 'X-Regent-Event-Secret' },
          },
        },
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) =>
          typeof json.$id === 'string' ? json.$id : `def-${i}`,
      },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } })
    app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'openapi' },
)
