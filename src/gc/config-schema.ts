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

const Cwd = Type.String({
  minLength: 1,
  description: "Working folder of the command (default: Regent's own)",
})

/** One text for the `kind` of every executor: the reference lists the key once. */
const EXECUTOR_KIND =
  "What runs the collector: `command` (a program, e.g. `registry garbage-collect`), `http` (the registry's GC API, e.g. Harbor) or `none` (the registry collects by itself)"

const EXECUTOR_TIMEOUT =
  'How long the collector may take (1 hour): a command is then stopped, an `http` run is no longer polled, and the run fails'

export const GcCommandSchema = Type.Object(
  {
    argv: Argv,
    env: Type.Optional(Env),
    cwd: Type.Optional(Cwd),
    timeoutMs: Type.Integer({
      minimum: 100,
      default: 120_000,
      description: 'How long the command may run before it is stopped and the run fails',
    }),
  },
  { additionalProperties: false },
)

/** `before` and `after`: an argv array, or a command with env, working folder and timeout. */
const Hook = (description: string) => Type.Union([Argv, GcCommandSchema], { description })
export const GcHookSchema = Hook('An argv array, or `{ argv, env, cwd, timeoutMs }`')

export const CommandExecutorSchema = Type.Object(
  {
    kind: Type.Literal('command', { description: EXECUTOR_KIND }),
    argv: Argv,
    env: Type.Optional(Env),
    cwd: Type.Optional(Cwd),
    timeoutMs: Type.Integer({ minimum: 1000, default: 3_600_000, description: EXECUTOR_TIMEOUT }),
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
    kind: Type.Literal('http', { description: EXECUTOR_KIND }),
    url: Type.String({
      pattern: '^https?://',
      description: "The trigger URL, e.g. Harbor's `/api/v2.0/system/gc/schedule`",
    }),
    method: Type.Union([Type.Literal('POST'), Type.Literal('PUT')], {
      default: 'POST',
      description:
        'Method of the trigger request, whose body is `{"schedule":{"type":"Manual"},"parameters":{"delete_untagged":…,"dry_run":…}}`',
    }),
    auth: Type.Optional(
      Type.Object(
        {
          username: Type.String({ minLength: 1, description: 'User name for the GC API' }),
          passwordEnv: Type.String({
            pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
            description: 'Environment variable holding the password; unset when a run starts, the run fails',
          }),
        },
        {
          additionalProperties: false,
          description: 'Basic credentials sent with the trigger, status and log requests; unset: none',
        },
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
    statusField: Type.String({
      default: 'job_status',
      description: "Top-level field of the status answer holding the run's state (Harbor's name by default)",
    }),
    successValues: Type.Array(Type.String(), {
      default: ['Success'],
      description: '`statusField` values meaning the collector finished well',
    }),
    failureValues: Type.Array(Type.String(), {
      default: ['Error', 'Stopped'],
      description: '`statusField` values meaning it failed; any other value keeps Regent polling',
    }),
    pollIntervalMs: Type.Integer({ minimum: 10, default: 5000, description: 'Time between status polls' }),
    timeoutMs: Type.Integer({ minimum: 1000, default: 3_600_000, description: EXECUTOR_TIMEOUT }),
  },
  { additionalProperties: false },
)

export const NoneExecutorSchema = Type.Object(
  { kind: Type.Literal('none', { description: EXECUTOR_KIND }) },
  { additionalProperties: false, description: 'The registry collects by itself; Regent only records' },
)

export const GcExecutorSchema = Type.Union([CommandExecutorSchema, HttpExecutorSchema, NoneExecutorSchema], {
  description: 'What collects the garbage',
})

export const GcConfigSchema = Type.Object(
  {
    executor: GcExecutorSchema,
    before: Type.Optional(
      Hook(
        'Command run before the collector, e.g. to make the registry read-only: an argv array, or `{ argv, env, cwd, timeoutMs }`',
      ),
    ),
    after: Type.Optional(
      Hook(
        'Command run after the collector, also after a failed step, e.g. to make the registry writable again (which also empties its blob descriptor cache); same form as `before`',
      ),
    ),
    waitMs: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'After `before`: how long in-flight uploads and write tokens need to end',
    }),
    dryRunFirst: Type.Boolean({
      default: true,
      description:
        "Run the collector's dry run before the real one and abort on `abortIfShareAbove` and `abortIfBytesAbove`; off, both are skipped unless the run deletes untagged manifests",
    }),
    abortIfShareAbove: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description:
          "Abort when the dry run finds more than this share (0–1) of the registry's blobs eligible; unset: no share limit",
      }),
    ),
    abortIfBytesAbove: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Abort when the blobs the dry run finds eligible are larger than this, in bytes (needs `storagePath`); unset: no size limit',
      }),
    ),
    storagePath: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "The registry's storage folder (`storage.filesystem.rootdirectory`) as mounted where Regent runs, to measure the bytes freed and size the eligible blobs; unset, `bytesFreed` is what the executor reports, if anything",
      }),
    ),
    verify: Type.Union([Type.Literal('all'), Type.Literal('none'), Type.Integer({ minimum: 1 })], {
      default: 'all',
      description:
        'After the collector, check that `all` remaining tags are whole (manifest, index children, config and layer blobs), a random sample of this many, or `none`',
    }),
    quietPeriodMs: Type.Integer({
      minimum: 0,
      default: 60_000,
      description:
        'Deletions queue a GC of their registry, due this long after the last one, so a burst of deletions leads to one run; `0`: right after each',
    }),
    schedule: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Cron expression (5 fields, UTC) for scheduled runs, e.g. `0 3 * * *`; unset: runs on request and after deletions only',
      }),
    ),
    restoreWindowMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          "A run waits until the registry's newest restorable deletion is this old, so deletions stay restorable at least this long; unset, a run starts at once and ends the restore window of every deletion before it",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Garbage collection of this registry and the safety steps around it; without it Regent neither runs nor schedules a GC for it',
  },
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
