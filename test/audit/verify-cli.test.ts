import { execFile } from 'node:child_process'
import t from 'tap'
import { appendEvents, auditDatabase, sampleInput, tamper } from './fixtures.js'

/** The built CLI, as `npm run audit:verify` runs it (the test runner builds dist/ first). */
const cliJs = new URL('../../dist/audit/verify-cli.js', import.meta.url).pathname

function runCli(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliJs, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    )
  })
}

t.test('audit:verify prints one JSON line and exits 0 on a sound chain, 1 on a broken one', async (t) => {
  const { pool, url } = await auditDatabase(t)
  await appendEvents(
    pool,
    Array.from({ length: 3 }, () => sampleInput()),
  )

  const sound = await runCli({ DATABASE_URL: url })
  t.equal(sound.code, 0, 'exit 0')
  const lines = sound.stdout.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  const result = JSON.parse(lines[0]!)
  t.match(result, { ok: true, checked: 3, lastSeq: 3, lastHash: /^[0-9a-f]{64}$/ })

  const withCheckpoint = await runCli({ DATABASE_URL: url }, [
    '--checkpoint',
    `3:${result.lastHash}`,
    '--batch-size',
    '2',
  ])
  t.equal(withCheckpoint.code, 0, 'the chain matches its own checkpoint')

  await tamper(pool, "UPDATE audit_events SET outcome = 'failed' WHERE seq = 2")
  const broken = await runCli({ DATABASE_URL: url })
  t.equal(broken.code, 1, 'exit 1')
  t.same(JSON.parse(broken.stdout), { ok: false, checked: 1, firstBrokenSeq: 2, reason: 'hash_mismatch' })
})

t.test('audit:verify exits 2 when it cannot check at all', async (t) => {
  const noUrl = await runCli({})
  t.equal(noUrl.code, 2)
  t.match(noUrl.stderr, /DATABASE_URL is not set/)
  const badArg = await runCli({ DATABASE_URL: 'postgres://x@127.0.0.1:1/x' }, ['--checkpoint', 'nonsense'])
  t.equal(badArg.code, 2)
  t.match(badArg.stderr, /--checkpoint must be SEQ:HASH/)
})
