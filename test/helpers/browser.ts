import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

/**
 * A real headless browser for the console tests: Debian's `chromium` driven by playwright-core (no
 * browser download). Playwright gives every launch a fresh temporary profile. Without the
 * background-networking flags Chromium reaches out to Google services, which the closed network
 * here refuses.
 */

const CHROMIUM = process.env.REGENT_TEST_CHROMIUM ?? '/usr/bin/chromium'
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Screenshots land here: a test artefact, ignored by git. */
export const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts')

/** Who has the focus, from inside the page (the tests have no DOM types). */
export async function focusedText(page: Page): Promise<string | undefined> {
  return page.evaluate('document.activeElement?.textContent ?? undefined')
}

export interface Teardownable {
  teardown(fn: () => unknown): void
}

export async function launchBrowser(t: Teardownable): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS })
  t.teardown(() => browser.close())
  return browser
}

/**
 * A context (its own cookies and storage, like a separate person) with a page. Console errors and
 * uncaught exceptions are collected: a test can assert the page ran cleanly.
 */
export async function openPage(
  browser: Browser,
  t: Teardownable,
): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  t.teardown(() => context.close())
  context.setDefaultTimeout(20_000)
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (message) => {
    // A refused API call logs a failed resource load; the page shows those itself.
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text()))
      problems.push(`console: ${message.text()}`)
  })
  return { context, page, problems }
}

/** The development sign-in: paste a token, wait until the console says who we are. */
export async function signInWithToken(page: Page, baseUrl: string, token: string, subject: string) {
  await page.goto(`${baseUrl}/ui/`)
  await page.getByLabel('Bearer token').fill(token)
  await page.getByRole('button', { name: 'Use this token' }).click()
  await page.locator('.who .subject', { hasText: subject }).waitFor()
}

/** Navigates inside the console (a hash route), keeping the in-memory session. */
export async function go(page: Page, hash: string) {
  await page.evaluate((h) => {
    ;(globalThis as unknown as { location: { hash: string } }).location.hash = h
  }, hash)
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

export interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: string[]
}

/**
 * Runs axe-core in the page (WCAG 2.1 A and AA rules) and returns the serious and critical
 * violations. The source is evaluated through the DevTools protocol, which the page's CSP does not
 * govern, so the policy under test stays as strict as in production.
 */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource)
  const violations = await page.evaluate(async () => {
    const page = globalThis as unknown as {
      axe: { run: (context: unknown, options: unknown) => Promise<unknown> }
      document: unknown
    }
    const result = (await page.axe.run(page.document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    })) as {
      violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[]
    }
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => JSON.stringify(n.target)),
    }))
  })
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const file = path.join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}
