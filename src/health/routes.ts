import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { databaseVersion, latestMigrationVersion } from '../db/migrate.js'

const CheckSchema = Type.Object({
  ok: Type.Boolean(),
  detail: Type.Optional(Type.String()),
})

const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('unready')]),
  checks: Type.Object({
    database: Type.Intersect([
      CheckSchema,
      Type.Object({ migrationVersion: Type.Integer(), expectedVersion: Type.Integer() }),
    ]),
    registries: Type.Array(
      Type.Object({
        name: Type.String(),
        status: Type.Union([Type.Literal('ok'), Type.Literal('unreachable'), Type.Literal('unknown')]),
      }),
    ),
  }),
  nextSteps: Type.Optional(
    Type.Array(Type.String(), { description: 'What to configure next; absent once a registry is' }),
  ),
})

/** Liveness says the process runs; readiness says it can serve (database reachable, schema current). */
export const healthRoutes: FastifyPluginAsyncTypebox<{
  probeTimeoutMs: number
  nextSteps: string[]
}> = async (app, { probeTimeoutMs, nextSteps }) => {
  const expectedVersion = latestMigrationVersion()

  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process is up',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        summary: 'Readiness: database reachable and migrations current',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (_request, reply) => {
      let database: { ok: boolean; detail?: string; migrationVersion: number; expectedVersion: number }
      try {
        const migrationVersion = await databaseVersion(app.db)
        const current = migrationVersion === expectedVersion
        database = {
          ok: current,
          migrationVersion,
          expectedVersion,
          ...(current
            ? {}
            : { detail: `schema at ${migrationVersion}, this build needs ${expectedVersion}` }),
        }
      } catch {
        database = { ok: false, detail: 'database unreachable', migrationVersion: 0, expectedVersion }
      }
      // A registry that is down degrades the report but leaves the process ready: the others and
      // everything that does not touch that registry still work.
      const registries = await Promise.all(
        app.registries.list().map(async ({ config: { name } }) => {
          const caps = await app.registries.capabilities(name, probeTimeoutMs)
          const status = caps === undefined ? 'unknown' : caps.reachable ? 'ok' : 'unreachable'
          return { name, status: status as 'ok' | 'unreachable' | 'unknown' }
        }),
      )
      const status = !database.ok
        ? 'unready'
        : registries.every((r) => r.status === 'ok')
          ? 'ready'
          : 'degraded'
      return reply
        .code(database.ok ? 200 : 503)
        .send({ status, checks: { database, registries }, ...(nextSteps.length > 0 ? { nextSteps } : {}) })
    },
  )
}
