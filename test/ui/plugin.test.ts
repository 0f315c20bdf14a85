import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { build, TEST_JWT_SECRET } from '../helper.js'

const PUBLIC = path.resolve(import.meta.dirname, '../../src/ui/public')

function directives(csp: string | undefined): Map<string, string[]> {
  return new Map(
    (csp ?? '').split(';').map((part) => {
      const [name = '', ...values] = part.trim().split(/\s+/)
      return [name, values]
    }),
  )
}

t.test('the console is served under /ui without a token, with strict security headers', async (t) => {
  const app = await build(t)
  const redirect = await app.inject({ url: '/ui' })
  t.equal(redirect.statusCode, 308)
  t.equal(redirect.headers.location, '/ui/')

  const page = await app.inject({ url: '/ui/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const csp = directives(page.headers['content-security-policy'] as string)
  t.same(csp.get('default-src'), ["'none'"])
  t.same(csp.get('script-src'), ["'self'"], 'scripts only from this origin: no inline, no eval')
  t.same(csp.get('style-src'), ["'self'"])
  t.same(csp.get('connect-src'), ["'self'"], 'without OIDC the page talks to Regent only')
  t.same(csp.get('form-action'), ["'none'"], 'no form ever submits a token into a URL')
  t.same(csp.get('frame-ancestors'), ["'none'"])
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.equal(page.headers['x-frame-options'], 'DENY')

  const main = await app.inject({ url: '/ui/js/main.js' })
  t.equal(main.statusCode, 200)
  t.match(main.headers['content-type'], /^text\/javascript/)
  const again = await app.inject({ url: '/ui/js/main.js', headers: { 'if-none-match': main.headers.etag } })
  t.equal(again.statusCode, 304, 'unchanged files are revalidated, not sent again')

  const hooks = await app.inject({ url: '/ui/vendor/hooks.mjs' })
  t.equal(hooks.statusCode, 200)
  t.match(hooks.body, 'from"./preact.mjs"', 'preact/hooks imports the served preact')
  t.notMatch(hooks.body, 'from"preact"', 'no bare specifier is left for the browser')
  t.equal((await app.inject({ url: '/ui/vendor/preact.mjs' })).statusCode, 200)
  t.equal((await app.inject({ url: '/ui/vendor/htm.mjs' })).statusCode, 200)

  for (const url of [
    '/ui/nope.js',
    '/ui/%2e%2e/package.json',
    '/ui/../package.json',
    '/ui/vendor/../../src/app.ts',
  ]) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 404, `${url} is not served`)
    t.equal(res.json().error.code, 'REGENT_NOT_FOUND')
  }
  const missing = await app.inject({ url: '/ui/nope.js' })
  t.ok(missing.headers['content-security-policy'], 'error answers carry the headers too')
})

t.test('config.json tells the browser how to sign in and nothing secret', async (t) => {
  const dev = await build(t)
  const devConfig = await dev.inject({ url: '/ui/config.json' })
  t.same(devConfig.json(), { oidc: null, pasteToken: true }, 'development: paste a token')
  t.notMatch(devConfig.body, TEST_JWT_SECRET)

  const issuer = 'https://idp.example.com/realms/main'
  const sso = await build(t, {
    config: {
      ui: {
        oidc: {
          issuer,
          clientId: 'regent-console',
          audience: 'regent-api',
          origins: ['https://login.example.com'],
        },
      },
    },
  })
  const ssoConfig = await sso.inject({ url: '/ui/config.json' })
  t.same(ssoConfig.json(), {
    oidc: { issuer, clientId: 'regent-console', scopes: 'openid profile', audience: 'regent-api' },
    pasteToken: false,
  })
  const csp = directives((await sso.inject({ url: '/ui/' })).headers['content-security-policy'] as string)
  t.same(
    csp.get('connect-src'),
    ["'self'", 'https://idp.example.com', 'https://login.example.com'],
    'the page may call the identity provider',
  )

  const off = await build(t, { config: { ui: { enabled: false } } })
  t.equal((await off.inject({ url: '/ui/' })).statusCode, 404, 'ui.enabled: false serves nothing')
})

t.test('a wrong ui config stops the start naming the key', async (t) => {
  t.throws(() => loadConfig({}, { ui: { oidc: { issuer: 'not a url', clientId: 'x' } } }), /ui\.oidc\.issuer/)
  t.throws(
    () => loadConfig({}, { ui: { oidc: { issuer: 'https://idp.example.com' } } }),
    /ui\.oidc\.clientId/,
  )
  t.throws(() => loadConfig({}, { ui: { colour: 'blue' } }), /ui\.colour: unknown key/)
})

t.test('the page has no inline script or style, and keeps no token anywhere but in memory', async (t) => {
  const index = readFileSync(path.join(PUBLIC, 'index.html'), 'utf8')
  for (const tag of index.match(/<script\b[^>]*>/g) ?? []) t.match(tag, /\ssrc=/, `${tag} loads a file`)
  t.notMatch(index, /\sstyle=|<style/, 'no inline style')
  t.notMatch(index, /\son[a-z]+=/i, 'no inline event handler')

  const scripts = readdirSync(PUBLIC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))
  t.ok(scripts.length > 5)
  for (const file of scripts) {
    const source = readFileSync(path.join(PUBLIC, file), 'utf8')
    t.notMatch(source, /localStorage\.|document\.cookie|indexedDB\./, `${file} stores nothing`)
    t.notMatch(
      source,
      /dangerouslySetInnerHTML|innerHTML|eval\(|new Function/,
      `${file} builds no markup from strings`,
    )
    if (file !== path.join('js', 'session.js'))
      t.notMatch(source, /sessionStorage/, `${file} keeps nothing per tab`)
  }
  const session = readFileSync(path.join(PUBLIC, 'js', 'session.js'), 'utf8')
  t.same(
    session.match(/sessionStorage\.setItem\(.*$/gm),
    ['sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo }))'],
    'only the one-time PKCE verifier, state and nonce survive the redirect, never the token',
  )
})
