import path from 'node:path'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp, LOG_REDACT } from './app.js'
import { type Config, ConfigError, loadConfig } from './config.js'
import type { EmbeddedPostgres } from './db/embedded.js'
import { readOrCreateSecret } from './dev-secrets.js'
import { nextSteps } from './onboarding/next-steps.js'

/**
 * The process: reads config, starts the embedded database when DATABASE_URL is unset, listens, and
 * on SIGTERM/SIGINT stops accepting, drains in-flight requests, closes the pool and then stops the
 * embedded database, all within the grace period.
 */
async function main() {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`regent: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }

  const logger = pino({
    level: config.logLevel,
    redact: { paths: LOG_REDACT, censor: '[redacted]' },
    // Pretty output is for a person at a terminal; anything else (files, collectors) gets JSON lines.
    ...(process.stdout.isTTY && (await hasPinoPretty()) ? { transport: { target: 'pino-pretty' } } : {}),
  })

  let embedded: EmbeddedPostgres | undefined
  if (!config.databaseUrl) {
    const { startEmbeddedPostgres } = await import('./db/embedded.js')
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPostgres.port,
      avoidPorts: [config.port],
      log: logger.child({ component: 'embedded-postgres' }),
      onGiveUp: (err) => {
        logger.fatal({ code: err.code }, err.message)
        process.stderr.write(`regent: ${err.code}: ${err.message}\n`)
        process.exit(1)
      },
    })
    config = { ...config, databaseUrl: embedded.url }
    if (!hasJwtKey(config)) {
      // Zero-setup development: a generated HS256 secret, kept beside the embedded database.
      const jwtSecret = await readOrCreateSecret(path.join(config.dataDir, 'jwt-secret'), 32)
      // This is what "development" means: the embedded database and a generated secret. Only
      // there is GraphQL introspection on unless the config says otherwise.
      config = {
        ...config,
        auth: { ...config.auth, jwtSecret },
        graphql: { ...config.graphql, introspection: config.graphql.introspection ?? true },
      }
      logger.info(
        'no JWT key configured: using a generated development secret. Mint a token with: npm run -s token -- --sub you --groups your-team --roles requester',
      )
    }
  }
  if (!hasJwtKey(config)) {
    process.stderr.write('regent: auth: configure auth.jwksUrl, auth.publicKeyFile or REGENT_JWT_SECRET\n')
    process.exit(2)
  }

  let app: Awaited<ReturnType<typeof buildApp>> | undefined
  closeWithGrace({ delay: config.shutdownGraceMs, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down')
    await app?.close()
    await embedded?.stop()
    logger.info('stopped')
  })

  app = await buildApp(config, { loggerInstance: logger })
  await app.listen({ port: config.port, host: config.host })
  const steps = nextSteps(config)
  if (steps.length > 0) {
    logger.info({ nextSteps: steps }, `next steps:\n${steps.map((s) => `  - ${s}`).join('\n')}`)
  }
}

function hasJwtKey(config: Config): boolean {
  return Boolean(config.auth.jwtSecret || config.auth.publicKeyFile || config.auth.jwksUrl)
}

async function hasPinoPretty(): Promise<boolean> {
  try {
    await import('pino-pretty')
    return true
  } catch {
    return false
  }
}

main().catch((err) => {
  // A catalogued startup error says what to do in its message; anything else keeps its stack.
  const code = (err as { code?: unknown }).code
  process.stderr.write(
    typeof code === 'string' && code.startsWith('REGENT_')
      ? `regent: ${code}: ${(err as Error).message}\n`
      : `regent: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`,
  )
  process.exit(1)
})
