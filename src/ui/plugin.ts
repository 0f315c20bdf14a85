import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { errors } from '../errors.js'
import type { UiConfig } from './config-schema.js'

/**
 * The web console under /ui: static files from this package, read once at start and served from
 * memory (a URL can only name a file that was listed here, so no path ever reaches the disk). The
 * console talks to the public REST and GraphQL API with the user's own bearer token; it has no
 * privileges of its own, and these routes need no token because they hold no data.
 */

interface Asset {
  body: Buffer
  type: string
  etag: string
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/**
 * Third-party modules, served from node_modules without a build step. preact/hooks imports the
 * bare specifier "preact", which a browser cannot resolve without an import map (an inline script
 * the CSP would have to allow), so it is pointed at the served copy instead.
 */
const VENDOR: { name: string; specifier: string; rewrite?: [from: string, to: string] }[] = [
  { name: 'preact.mjs', specifier: 'preact' },
  { name: 'hooks.mjs', specifier: 'preact/hooks', rewrite: ['from"preact"', 'from"./preact.mjs"'] },
  { name: 'htm.mjs', specifier: 'htm' },
]

function asset(body: Buffer, file: string): Asset {
  const type = TYPES[path.extname(file)]
  if (!type) throw new Error(`ui: no content type for ${file}`)
  return { body, type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` }
}

function loadAssets(): Map<string, Asset> {
  const root = fileURLToPath(new URL('./public/', import.meta.url))
  const assets = new Map<string, Asset>()
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const full = path.join(entry.parentPath, entry.name)
    const name = path.relative(root, full).split(path.sep).join('/')
    assets.set(name, asset(readFileSync(full), name))
  }
  for (const { name, specifier, rewrite } of VENDOR) {
    let text = readFileSync(fileURLToPath(import.meta.resolve(specifier)), 'utf8')
    if (rewrite) {
      // A new release that imports differently must fail at start, not in someone's browser.
      if (text.split(rewrite[0]).length !== 2)
        throw new Error(`ui: ${specifier} no longer imports ${rewrite[0]}`)
      text = text.replace(rewrite[0], rewrite[1])
    }
    assets.set(`vendor/${name}`, asset(Buffer.from(text), name))
  }
  return assets
}

/** The origins the page may call besides its own: the identity provider's. */
function connectSources(ui: UiConfig): string[] {
  if (!ui.oidc) return []
  return [...new Set([new URL(ui.oidc.issuer).origin, ...ui.oidc.origins])]
}

/**
 * No inline script or style anywhere, so the policy can forbid both. `form-action 'none'`: every
 * form is handled by script; should the script fail, a pasted token must not end up in a URL.
 */
export function contentSecurityPolicy(ui: UiConfig): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${["'self'", ...connectSources(ui)].join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ')
}

/** What the browser needs to sign in; nothing here is secret. */
function clientConfig(ui: UiConfig) {
  const oidc = ui.oidc
  return {
    oidc: oidc
      ? {
          issuer: oidc.issuer,
          clientId: oidc.clientId,
          scopes: oidc.scopes,
          ...(oidc.audience ? { audience: oidc.audience } : {}),
          ...(oidc.resource ? { resource: oidc.resource } : {}),
        }
      : null,
    pasteToken: ui.pasteToken ?? !oidc,
  }
}

export default fp<FeatureOptions>(
  async (app, { config }) => {
    const ui = config.ui
    if (!ui.enabled) return
    const assets = loadAssets()
    const configAsset = asset(Buffer.from(JSON.stringify(clientConfig(ui))), 'config.json')
    const headers = {
      'content-security-policy': contentSecurityPolicy(ui),
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      // The sign-in callback URL carries the authorization code: never send it on as a referrer.
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    }

    const send = (request: FastifyRequest, reply: FastifyReply, file: Asset) => {
      reply.headers(headers).header('etag', file.etag).header('cache-control', 'no-cache')
      if (request.headers['if-none-match'] === file.etag) return reply.code(304).send()
      return reply.type(file.type).send(file.body)
    }

    await app.register(async (scope: FastifyInstance) => {
      // Error answers from here (an unknown file) carry the same headers as the files.
      scope.addHook('onSend', async (_request, reply) => {
        if (!reply.hasHeader('content-security-policy')) reply.headers(headers)
      })
      const route = { config: { public: true }, schema: { hide: true } }
      scope.get('/ui', route, async (_request, reply) => reply.redirect('/ui/', 308))
      scope.get('/ui/', route, async (request, reply) => send(request, reply, assets.get('index.html')!))
      scope.get('/ui/config.json', route, async (request, reply) => send(request, reply, configAsset))
      scope.get('/ui/*', route, async (request, reply) => {
        const name = (request.params as { '*': string })['*']
        const file = assets.get(name)
        if (!file) throw new errors.NOT_FOUND(request.method, request.url)
        return send(request, reply, file)
      })
    })
  },
  { name: 'ui', dependencies: ['auth', 'error-handler'] },
)
