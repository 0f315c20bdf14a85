import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config.js'
import { createPool } from '../db/pool.js'
import { type VerifyOptions, verifyAuditChain } from './verify.js'

/**
 * `npm run audit:verify [-- --from-seq N --batch-size N --checkpoint SEQ:HASH]`: walks the audit
 * chain of DATABASE_URL and prints the result as one JSON line. Exit code 0: the chain verifies;
 * 1: it is broken (the line names the first broken seq); 2: it could not be checked at all.
 * Keep the printed `lastSeq:lastHash` somewhere outside the database and pass it back as
 * `--checkpoint` next time: that catches a chain rewritten consistently from the start.
 */
async function main() {
  const { values } = parseArgs({
    options: {
      'from-seq': { type: 'string' },
      'batch-size': { type: 'string' },
      checkpoint: { type: 'string' },
    },
  })
  const options: VerifyOptions = {}
  if (values['from-seq'] !== undefined) options.fromSeq = positiveInteger('--from-seq', values['from-seq'])
  if (values['batch-size'] !== undefined)
    options.batchSize = positiveInteger('--batch-size', values['batch-size'])
  if (values.checkpoint !== undefined) {
    const match = /^(\d+):([0-9a-f]{64})$/.exec(values.checkpoint)
    if (!match) throw new UsageError('--checkpoint must be SEQ:HASH (the lastSeq and lastHash of a run)')
    options.checkpoint = { seq: Number(match[1]), hash: match[2]! }
  }

  const config = loadConfig()
  if (!config.databaseUrl) throw new UsageError('DATABASE_URL is not set')
  const pool = createPool(config.databaseUrl, config.database)
  try {
    const result = await verifyAuditChain(pool, options)
    process.stdout.write(`${JSON.stringify(result)}\n`)
    process.exitCode = result.ok ? 0 : 1
  } finally {
    await pool.end()
  }
}

class UsageError extends Error {}

function positiveInteger(name: string, value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${name} must be a positive integer`)
  }
  return n
}

main().catch((err) => {
  const message =
    err instanceof ConfigError ||
    err instanceof UsageError ||
    (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
      ? (err as Error).message
      : (err as Error).stack
  process.stderr.write(`regent audit:verify: ${message}\n`)
  process.exitCode = 2
})
