import type { FastifyServerOptions } from 'fastify'
import type pg from 'pg'
import type { Config } from './config.js'
import type { ExecutionHooks } from './deletions/execute.js'

/** What a caller of buildApp may set besides the config: tests and tools, not deployments. */
export interface AppOverrides {
  /** A pino logger, logger options, or false. Default: no logging (tests); server.ts passes its own. */
  logger?: FastifyServerOptions['logger']
  loggerInstance?: FastifyServerOptions['loggerInstance']
  /** Use this pool instead of opening one from config.databaseUrl; the caller closes it. */
  pool?: pg.Pool
  /** Apply migrations while booting (default true). */
  migrate?: boolean
  /** Environment for the secrets config names (default process.env). */
  env?: Record<string, string | undefined>
  /**
   * false: no job worker, no schedules and no LISTEN connections, for tools that only need the
   * routes (the OpenAPI generator builds the app without a database). Default true.
   */
  background?: boolean
  /**
   * The clock the retention service and the GC and retention schedules read (default real time),
   * so tests move time instead of waiting for it.
   */
  now?: () => Date
  /** Test seams around each registry DELETE of an execution (crash tests). */
  executionHooks?: ExecutionHooks
}

/** Every feature plugin gets the same options: the config, and what the caller overrode. */
export interface FeatureOptions {
  config: Config
  overrides: AppOverrides
}

/** Whether this process runs background work (workers, schedules, LISTEN bridges). */
export function runsInBackground(overrides: AppOverrides): boolean {
  return overrides.background !== false
}
