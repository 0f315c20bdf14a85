import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

export const IndexSchema = Type.Object({
  service: Type.Literal('regent'),
  links: Type.Object({
    docs: Type.String({ description: 'Swagger UI for the REST API' }),
    openapi: Type.String(),
    graphql: Type.String(),
    graphiql: Type.Optional(Type.String({ description: 'Only when `graphql.graphiql` is on' })),
    ui: Type.String({ description: 'The console' }),
    health: Type.String(),
    ready: Type.String(),
  }),
  nextSteps: Type.Array(Type.String(), { description: 'Empty once a registry is configured' }),
})

export interface OnboardingOptions {
  graphiql: boolean
  nextSteps: string[]
}

/**
 * `GET /`: where a person or a script that opened the bare address goes next. Public and computed
 * from config alone, so it touches neither the database nor a registry.
 */
export const onboardingRoutes: FastifyPluginAsyncTypebox<OnboardingOptions> = async (app, options) => {
  const answer = {
    service: 'regent' as const,
    links: {
      docs: '/docs',
      openapi: '/openapi.json',
      graphql: '/graphql',
      ...(options.graphiql ? { graphiql: '/graphiql' } : {}),
      ui: '/ui',
      health: '/healthz',
      ready: '/readyz',
    },
    nextSteps: options.nextSteps,
  }
  app.get(
    '/',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        summary: 'Where to go from here: links to the API docs, GraphQL and the console',
        response: { 200: IndexSchema },
      },
    },
    async () => answer,
  )
}
