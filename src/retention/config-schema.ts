import { type Static, Type } from 'typebox'

/** The `retention` section: blast-radius limits every policy run obeys, and run mechanics. */
export const RetentionConfigSchema = Type.Object(
  {
    guards: Type.Object(
      {
        maxShare: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 0.8,
          description:
            'A run stops for an admin when it would delete more than this share of a repository’s tags',
        }),
        maxCount: Type.Integer({
          minimum: 1,
          default: 1000,
          description: 'A run stops for an admin when it would delete more manifests than this',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Blast-radius limits every run obeys' },
    ),
    warnBeforeMinutes: Type.Integer({
      minimum: 0,
      maximum: 10080,
      default: 60,
      description: 'Send `policy.warning` this long before a scheduled run deletes tags (0: never)',
    }),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 4,
      description: 'Repositories evaluated at once (calls within one follow `browse.concurrency`)',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 20,
      default: 3,
      description: 'Attempts of a run job before the run fails',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'How retention policies run, and the limits they obey; the policies themselves live in Postgres, managed through the API',
  },
)

export type RetentionConfig = Static<typeof RetentionConfigSchema>
