import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'

/**
 * Every table has one owner: the feature folder whose SQL reads and writes it. Other features call
 * that feature's functions, never its SQL, so a table's rules (who may write it, in which order its
 * locks are taken) live in one place. This test reads every table the migrations create and every
 * statement in src/, and fails when a table is named in SQL outside its owner's folder.
 */
const root = path.resolve(import.meta.dirname, '../..')

const OWNERS: Record<string, string> = {
  app_meta: 'db',
  audit_events: 'audit',
  audit_chain_head: 'audit',
  content_cache: 'registries',
  jobs: 'jobs',
  deletion_requests: 'deletions',
  deletion_approvals: 'deletions',
  deletion_items: 'deletions',
  legal_holds: 'holds',
  gc_runs: 'gc',
  gc_schedule_slots: 'gc',
  registry_event_ids: 'registry-events',
  registry_digest_activity: 'registry-events',
  registry_tag_activity: 'registry-events',
  registry_tag_sightings: 'registry-events',
  notification_deliveries: 'notifications',
  slack_request_signatures: 'chatops',
  retention_policies: 'retention',
  retention_runs: 'retention',
  retention_warnings: 'retention',
  usage_references: 'usage',
  usage_sources: 'usage',
}

function tablesOfMigrations(): string[] {
  const dir = path.join(root, 'migrations')
  const tables: string[] = []
  for (const file of readdirSync(dir).sort()) {
    const sql = readFileSync(path.join(dir, file), 'utf8')
    for (const match of sql.matchAll(/CREATE TABLE\s+([a-z_]+)/gi)) tables.push(match[1]!.toLowerCase())
  }
  return tables
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    return statSync(full).isDirectory() ? sourceFiles(full) : full.endsWith('.ts') ? [full] : []
  })
}

/** Where a statement names the table: after FROM, JOIN, INTO, UPDATE or TABLE. */
const named = (table: string) => new RegExp(`\\b(FROM|JOIN|INTO|UPDATE|TABLE)\\s+${table}\\b`, 'i')

t.test('every table the migrations create has an owner folder', async (t) => {
  for (const table of tablesOfMigrations()) t.ok(OWNERS[table], `${table} has an owner`)
})

t.test('a table is named in SQL only inside its owner folder', async (t) => {
  const files = sourceFiles(path.join(root, 'src'))
  const trespasses: string[] = []
  let seen = 0
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    const folder = path.relative(path.join(root, 'src'), file).split(path.sep)[0]
    for (const [table, owner] of Object.entries(OWNERS)) {
      if (!named(table).test(text)) continue
      seen++
      if (folder !== owner)
        trespasses.push(`${path.relative(root, file)} names ${table} (owned by src/${owner})`)
    }
  }
  t.ok(seen >= Object.keys(OWNERS).length, `every table is used somewhere (${seen} uses found)`)
  t.same(trespasses, [], 'no feature writes SQL against another feature’s tables')
})

t.test('the check itself finds a table named outside its owner', async (t) => {
  t.ok(named('jobs').test('UPDATE jobs SET state = $1'))
  t.ok(named('deletion_items').test('SELECT * FROM deletion_items di JOIN x'))
  t.notOk(named('jobs').test('the jobs of one registry'), 'prose is not SQL')
})
