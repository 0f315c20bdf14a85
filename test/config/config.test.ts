import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { REFERENCE_PATH, renderConfigReference } from '../../scripts/config-reference.js'
import {
  CONFIG_FILE_ENV,
  ConfigError,
  ConfigSchema,
  ENV_VARS,
  loadConfig,
  QUICK_REGISTRY_ENV,
} from '../../src/config.js'

function problemsOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('expected a ConfigError')
}

function configFile(_t: { teardown(fn: () => void): void }, text: string): string {
  const file = path.join(tmpdir(), `regent-config-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, text)
  return file
}

t.test('defaults apply with an empty environment', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.logLevel, 'info')
  t.equal(config.databaseUrl, undefined)
  t.equal(config.dataDir, path.resolve('.regent'))
  t.same(config.registries, [])
})

t.test('environment variables override the file and are converted to the schema types', async (t) => {
  const file = configFile(t, 'port: 9000\nhost: 127.0.0.1\ndatabase:\n  poolMax: 4\n')
  const config = loadConfig({ [CONFIG_FILE_ENV]: file, PORT: '9100', REGENT_TRUST_PROXY: 'true' })
  t.equal(config.port, 9100)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.database.poolMax, 4)
  t.equal(config.trustProxy, true)
})

t.test('a wrong type names the key and the variable it came from', async (t) => {
  const problems = problemsOf(() => loadConfig({ PORT: 'eighty' }))
  t.equal(problems.length, 1)
  t.match(problems[0], /^port: .*integer.*\(from env PORT\)$/)
})

t.test('an unknown key in the file is refused, named with its full path', async (t) => {
  const file = configFile(t, 'database:\n  poolMax: 3\n  poolSize: 5\nlisten: 1\n')
  const problems = problemsOf(() => loadConfig({ [CONFIG_FILE_ENV]: file }))
  t.ok(
    problems.some((p) => p.startsWith('database.poolSize: unknown key')),
    problems.join('\n'),
  )
  t.ok(
    problems.some((p) => p.startsWith('listen: unknown key')),
    problems.join('\n'),
  )
})

t.test('a missing required value is named', async (t) => {
  const file = configFile(t, 'registries:\n  - name: local\n')
  const problems = problemsOf(() => loadConfig({ [CONFIG_FILE_ENV]: file }))
  t.same(problems, [`registries[0].url: required value is missing (from ${file})`])
})

t.test('a config file that is not YAML, or not a mapping, is one clear problem', async (t) => {
  const broken = configFile(t, 'port: [1, 2\n')
  t.match(problemsOf(() => loadConfig({ [CONFIG_FILE_ENV]: broken }))[0], /^REGENT_CONFIG \(.*\): /)
  const list = configFile(t, '- a\n- b\n')
  t.match(problemsOf(() => loadConfig({ [CONFIG_FILE_ENV]: list }))[0], /must hold a mapping/)
  t.match(problemsOf(() => loadConfig({ [CONFIG_FILE_ENV]: '/nonexistent/regent.yaml' }))[0], /ENOENT/)
})

t.test('REGENT_REGISTRY_URL configures one registry named local without a file', async (t) => {
  const config = loadConfig({ REGENT_REGISTRY_URL: 'http://127.0.0.1:5000' })
  t.equal(config.registries.length, 1)
  t.match(config.registries[0], {
    name: 'local',
    url: 'http://127.0.0.1:5000',
    kind: 'distribution',
    maxConcurrency: 8,
  })
  const named = loadConfig({ REGENT_REGISTRY_URL: 'https://r.example.com', REGENT_REGISTRY_NAME: 'ci' })
  t.same(
    named.registries.map((r) => [r.name, r.url]),
    [['ci', 'https://r.example.com']],
  )
})

t.test('REGENT_REGISTRY_URL adds to the registries of the file, and never replaces one', async (t) => {
  const file = configFile(t, 'registries:\n  - name: prod\n    url: https://prod.example.com\n')
  const config = loadConfig({ [CONFIG_FILE_ENV]: file, REGENT_REGISTRY_URL: 'http://127.0.0.1:5000' })
  t.same(
    config.registries.map((r) => r.name),
    ['prod', 'local'],
  )
  const clash = problemsOf(() =>
    loadConfig({
      [CONFIG_FILE_ENV]: file,
      REGENT_REGISTRY_URL: 'http://127.0.0.1:5000',
      REGENT_REGISTRY_NAME: 'prod',
    }),
  )
  t.match(clash, [/^REGENT_REGISTRY_URL: a registry named prod is already configured/])
})

t.test('a bad quick registry is refused naming the variable', async (t) => {
  t.same(problemsOf(() => loadConfig({ REGENT_REGISTRY_URL: 'ftp://x' })).length, 1)
  t.match(
    problemsOf(() => loadConfig({ REGENT_REGISTRY_URL: 'ftp://x' }))[0],
    /^registries\[0\]\.url: .*\(from env REGENT_REGISTRY_URL\)$/,
  )
  t.match(
    problemsOf(() =>
      loadConfig({ REGENT_REGISTRY_URL: 'http://x:5000', REGENT_REGISTRY_NAME: 'Not_Valid' }),
    )[0],
    /^registries\[0\]\.name: .*\(from env REGENT_REGISTRY_NAME\)$/,
  )
  t.same(
    problemsOf(() => loadConfig({ REGENT_REGISTRY_NAME: 'ci' })),
    ['REGENT_REGISTRY_NAME: only takes effect with REGENT_REGISTRY_URL'],
  )
})

/** Every key path of the schema, union members included: `database.poolMax`, `registries[].gc.executor.argv`, … */
function keyPaths(schema: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = []
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>
  const variants = (node: Record<string, unknown>): Record<string, unknown>[] =>
    Array.isArray(node.anyOf) ? (node.anyOf as Record<string, unknown>[]).flatMap(variants) : [node]
  for (const [name, child] of Object.entries(props)) {
    const here = prefix ? `${prefix}.${name}` : name
    if (!out.includes(here)) out.push(here)
    for (const variant of variants(child)) {
      const inner = variant.type === 'array' ? (variant.items as Record<string, unknown>) : variant
      const suffix = variant.type === 'array' ? '[]' : ''
      if (inner && inner.type === 'object')
        for (const key of keyPaths(inner, here + suffix)) if (!out.includes(key)) out.push(key)
    }
  }
  return out
}

t.test('docs/configuration.md is what the config schema generates', async (t) => {
  const committed = readFileSync(REFERENCE_PATH, 'utf8')
  // A key added to the schema without `npm run docs` fails here (and in CI's docs:check).
  t.ok(committed === renderConfigReference(), 'docs/configuration.md is current: run `npm run docs`')
})

t.test('the configuration reference documents every config key and every environment variable', async (t) => {
  const reference = renderConfigReference()
  const missing = keyPaths(ConfigSchema as unknown as Record<string, unknown>).filter(
    (key) => !reference.includes(`\`${key}\``),
  )
  t.same(missing, [], 'config keys missing from the reference (each written as `key.path`)')
  const vars = [...Object.keys(ENV_VARS), CONFIG_FILE_ENV, ...Object.values(QUICK_REGISTRY_ENV)].filter(
    (name) => !reference.includes(`\`${name}\``),
  )
  t.same(vars, [], 'environment variables missing from the reference')
})

t.test('the README names the environment variables a newcomer needs and links the reference', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## The demo'))
  const newcomer = [
    CONFIG_FILE_ENV,
    QUICK_REGISTRY_ENV.url,
    QUICK_REGISTRY_ENV.name,
    ...([
      'PORT',
      'DATABASE_URL',
      'REGENT_DATA_DIR',
      'REGENT_JWT_SECRET',
      'LOG_LEVEL',
    ] satisfies (keyof typeof ENV_VARS)[]),
  ]
  t.same(
    newcomer.filter((name) => !quickStart.includes(`\`${name}\``)),
    [],
    'variables missing from the quick start',
  )
  t.match(readme, '](docs/configuration.md)', 'the README links the configuration reference')
})
