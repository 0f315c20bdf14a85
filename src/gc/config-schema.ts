import { type Static, Type } from 'typebox'

/**
 * The `gc` section of a registry's config: how Regent collects its garbage, and the safety
 * protocol around it (see protocol.ts: deletions drained, `before`, a wait, a dry run, the
 * collector, `after`, a check of what is left). Commands are argv arrays run without a shell: nothing in
 * them is interpreted, so a tag or a path can never become a second command.
 */

const Argv = Type.Array(Type.String({ minLength: 1 }), {
  minItems: 1,
  description: 'Program and arguments, run without a shell',
})

const Env = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), {
  description: 'Extra environment variables; the command gets only these plus PATH and HOME',
})

export const GcCommandSchema = Type.Object(
  {
    argv: Argv,
    env: Type.Optional(Env),
    cwd: Type.Optional(Type.String({ minLength: 1 })),
    timeoutMs: Type.Integer({ minimum: 100, default: 120_000 }),
  },
  { additionalProperties: false },
)

/** `before` and `after`: an argv array, or a command with env, working folder and timeout. */
export const GcHookSchema = Type.Union([Argv, GcCommandSchema])

export const CommandExecutorSchema = Type.Object(
  {
    kind: Type.Literal('command'),
    argv: Argv,
    env: Type.Optional(Env),
    cwd: Type.Optional(Type.String({ minLength: 1 })),
    timeoutMs: Type.Integer({ minimum: 1000, default: 3_600_000 }),
    dryRunArgs: Type.Array(Type.String(), {
      default: ['--dry-run'],
      description: 'Appended to argv for a dry run',
    }),
    deleteUntaggedArgs: Type.Array(Type.String(), {
      default: ['--delete-untagged'],
      description: 'Appended to argv when untagged manifests are to be deleted too',
    }),
  },
  { additionalProperties: false },
)

export const HttpExecutorSchema = Type.Object(
  {
    kind: Type.Literal('http'),
    url: Type.String({ pattern: '^https?://', description: "e.g. Harbor's /api/v2.0/system/gc/schedule" }),
    method: Type.Union([Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST' }),
    auth: Type.Optional(
      Type.Object(
        {
          username: Type.String({ minLength: 1 }),
          passwordEnv: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
        },
        { additionalProperties: false },
      ),
    ),
    pollUrl: Type.Optional(
      Type.String({
        description:
          'Status URL; `{id}` is replaced by the id the trigger answered (Location header or `id` field). Default: the Location header',
      }),
    ),
    logUrl: Type.Optional(
      Type.String({ description: 'Log URL, `{id}` replaced likewise (Harbor: …/gc/{id}/log)' }),
    ),
    statusField: Type.String({ default: 'job_status' }),
    successValues: Type.Array(Type.String(), { default: ['Success'] }),
    failureValues: Type.Array(Type.String(), { default: ['Error', 'Stopped'] }),
    pollIntervalMs: Type.Integer({ minimum: 10, default: 5000 }),
    timeoutMs: Type.Integer({ minimum: 1000, default: 3_600_000 }),
  },
  { additionalProperties: false },
)

export const NoneExecutorSchema = Type.Object(
  { kind: Type.Literal('none') },
  { additionalProperties: false, description: 'The registry collects by itself; Regent only records' },
)

export const GcExecutorSchema = Type.Union([CommandExecutorSchema, HttpExecutorSchema, NoneExecutorSchema])

export const GcConfigSchema = Type.Object(
  {
    executor: GcExecutorSchema,
    before: Type.Optional(GcHookSchema),
    after: Type.Optional(GcHookSchema),
    waitMs: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'After `before`: how long in-flight uploads and write tokens need to end',
    }),
    dryRunFirst: Type.Boolean({ default: true }),
    abortIfShareAbove: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    abortIfBytesAbove: Type.Optional(Type.Integer({ minimum: 0 })),
    storagePath: Type.Optional(Type.String({ minLength: 1 })),
    verify: Type.Union([Type.Literal('all'), Type.Literal('none'), Type.Integer({ minimum: 1 })], {
      default: 'all',
    }),
    quietPeriodMs: Type.Integer({ minimum: 0, default: 60_000 }),
    schedule: Type.Optional(Type.String({ minLength: 1, description: '5-field cron expression, UTC' })),
    restoreWindowMs: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)

export type GcConfig = Static<typeof GcConfigSchema>
export type GcCommand = Static<typeof GcCommandSchema>
export type GcHook = Static<typeof GcHookSchema>
export type CommandExecutor = Static<typeof CommandExecutorSchema>
export type HttpExecutor = Static<typeof HttpExecutorSchema>
export type GcExecutor = Static<typeof GcExecutorSchema>

/** A hook as a full command: a bare argv array gets the default timeout. */
export function hookCommand(hook: GcHook): GcCommand {
  return Array.isArray(hook) ? { argv: hook, timeoutMs: 120_000 } : hook
}
