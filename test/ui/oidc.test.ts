import t from 'tap'
import { build } from '../helper.js'
import { go, launchBrowser, openPage } from '../helpers/browser.js'
import { startOidcProvider } from '../helpers/oidc.js'
import { freePort } from '../helpers/registry.js'

// Sign-in through a real OpenID Connect provider: authorization code flow with PKCE in the
// browser, an RS256 JWT access token that Regent verifies through the provider's JWKS.

t.test(
  'the console signs in with the authorization code flow and PKCE against a local OIDC provider; the token stays in memory',
  async (t) => {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const idp = await startOidcProvider({
      redirectUri: `${base}/ui/`,
      accounts: { alice: { groups: ['payments'], roles: ['requester', 'viewer'] } },
    })
    t.teardown(idp.stop)
    const app = await build(t, {
      config: {
        auth: { jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: idp.audience },
        ui: {
          oidc: {
            issuer: idp.issuer,
            clientId: idp.clientId,
            scopes: 'openid regent',
            resource: idp.resource,
          },
        },
      },
    })
    await app.listen({ port, host: '127.0.0.1' })

    const browser = await launchBrowser(t)
    const { context, page, problems } = await openPage(browser, t)
    const authorizeUrls: URL[] = []
    const tokenAnswers: Promise<{ access_token?: string }>[] = []
    page.on('request', (req) => {
      if (req.url().startsWith(`${idp.issuer}/auth`)) authorizeUrls.push(new URL(req.url()))
    })
    page.on('response', (res) => {
      if (res.url() === `${idp.issuer}/token` && res.request().method() === 'POST')
        tokenAnswers.push(res.json())
    })

    await page.goto(`${base}/ui/#/audit`)
    t.equal(await page.getByLabel('Bearer token').count(), 0, 'no paste-a-token form once OIDC is configured')
    await page.getByRole('button', { name: 'Sign in' }).click()

    // The provider's own (development) login and consent pages.
    await page.locator('input[name="login"]').fill('alice')
    await page.locator('input[name="password"]').fill('any password')
    await page.locator('button[type="submit"]').click()
    await page.locator('button[type="submit"]', { hasText: /continue/i }).click()

    await page.locator('.who .subject', { hasText: 'alice' }).waitFor()
    t.match(await page.locator('.who').innerText(), /requester, viewer; payments/, '/v1/me: roles and teams')
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor()
    t.pass('back on the page the sign-in started from')

    const authorize = authorizeUrls[0]!
    t.equal(authorize.searchParams.get('code_challenge_method'), 'S256', 'PKCE with S256')
    t.match(authorize.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
    t.equal(authorize.searchParams.get('resource'), idp.resource)
    t.notOk(new URL(page.url()).search, 'the code is gone from the address bar')

    const accessToken = (await tokenAnswers[0])?.access_token
    t.match(accessToken, /^ey[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT access token')
    const me = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(me.json().subject, 'alice', 'Regent verifies it through the provider’s JWKS')

    const storage = await page.evaluate('JSON.stringify([{ ...localStorage }, { ...sessionStorage }])')
    t.equal(storage, '[{},{}]', 'nothing in localStorage or sessionStorage')
    const cookies = await context.cookies([base, idp.issuer])
    t.notOk(
      cookies.some((c) => c.value.includes(accessToken!)),
      'the token is in no cookie',
    )

    // The token works for the API: the inbox is read with it.
    await go(page, '#/')
    await page.getByText('Nothing awaits your approval.').waitFor()
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('heading', { name: 'Sign in to Regent' }).waitFor()
    t.same(problems, [], 'no script errors')
  },
)

t.test('an answer that does not belong to a sign-in started here is refused', async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const idp = await startOidcProvider({ redirectUri: `${base}/ui/`, accounts: {} })
  t.teardown(idp.stop)
  const app = await build(t, {
    config: {
      auth: { jwksUrl: idp.jwksUrl, issuer: idp.issuer },
      ui: { oidc: { issuer: idp.issuer, clientId: idp.clientId } },
    },
  })
  await app.listen({ port, host: '127.0.0.1' })
  const browser = await launchBrowser(t)
  const { page } = await openPage(browser, t)
  await page.goto(`${base}/ui/?code=forged&state=forged`)
  await page.getByText('does not match a sign-in started here').waitFor()
  t.notOk(new URL(page.url()).search, 'the forged code is dropped from the address bar')
  t.equal(await page.locator('.who').count(), 0, 'nobody is signed in')
})
