import jwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { matchesGlob } from '../governance/globs.js'
import { createKeySource } from './keys.js'
import { type Principal, ROLES, type Role } from './principal.js'
import { authRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set for every authenticated route before its handler runs. */
    principal: Principal
  }
  interface FastifyContextConfig {
    /** Reachable without a token: health, metrics and the API documents only. */
    public?: boolean
  }
}

export const ON_BEHALF_OF_HEADER = 'x-regent-on-behalf-of'
/**
 * Browsers cannot set headers on a WebSocket upgrade, so a browser sends its bearer token as one
 * of the offered subprotocols, `regent-bearer.<JWT>`, next to `graphql-transport-ws` (Kubernetes
 * does the same for its exec streams). The server never selects it: the first offered protocol is
 * the one answered.
 */
export const BEARER_SUBPROTOCOL_PREFIX = 'regent-bearer.'
const SUBJECT = /^[\w.@:+-]{1,256}$/

/**
 * One authentication path for REST and GraphQL: every route needs a valid bearer token unless it
 * is marked `config: { public: true }`. The principal is built once here and handed to services.
 */
export default fp<FeatureOptions>(
  async (app, { config }) => {
    const auth = config.auth
    const keys = createKeySource(auth)
    if (!keys) app.log.warn('no JWT key configured: every authenticated route answers 401')

    await app.register(jwt, {
      secret: async (_request: FastifyRequest, token: TokenOrHeader) => {
        if (!keys) throw new Error('no key configured')
        const header = 'header' in token ? token.header : token
        return keys.keyFor(header)
      },
      decode: { complete: true },
      verify: {
        algorithms: (keys?.algorithms ?? ['HS256']) as ['HS256'],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: auth.clockToleranceSec * 1000,
        ...(auth.issuer ? { allowedIss: auth.issuer } : {}),
        ...(auth.audience ? { allowedAud: auth.audience } : {}),
      },
    })

    app.decorateRequest('principal', null as unknown as Principal)

    app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      if (isPublic(request)) return
      if (request.headers.upgrade && request.headers.authorization === undefined) {
        const token = bearerFromSubprotocols(request.headers['sec-websocket-protocol'])
        if (token) request.headers.authorization = `Bearer ${token}`
      }
      let claims: Record<string, unknown>
      try {
        claims = (await request.jwtVerify()) as Record<string, unknown>
        assertLifetime(claims, auth)
      } catch (err) {
        request.log.info({ reason: (err as Error).message }, 'token refused')
        reply.header('www-authenticate', 'Bearer realm="regent", error="invalid_token"')
        // A refused WebSocket upgrade owns its socket: nothing else closes it, and an open one would
        // hold up shutdown. Close it once the 401 is written.
        if (request.headers.upgrade) {
          reply.header('connection', 'close')
          reply.raw.once('finish', () => request.raw.socket?.destroy())
        }
        throw new errors.UNAUTHENTICATED()
      }
      request.principal = principalFrom(claims, request.headers[ON_BEHALF_OF_HEADER], auth)
    })
    await app.register(authRoutes)
  },
  { name: 'auth', dependencies: ['error-handler'] },
)

/**
 * A signature proves who issued a token, not that it is short-lived: `exp: 1e308` verifies. A token
 * may live at most auth.maxTokenLifetimeSec from its `iat` (from now, without one), and an `iat`
 * in the future is refused, so a leaked token always runs out.
 */
function assertLifetime(claims: Record<string, unknown>, auth: Config['auth']): void {
  const now = Math.floor(Date.now() / 1000)
  const { exp, iat } = claims
  if (iat !== undefined && (typeof iat !== 'number' || iat > now + auth.clockToleranceSec))
    throw new Error('iat is not a time in the past')
  const issued = typeof iat === 'number' ? iat : now
  if (typeof exp !== 'number' || exp - issued > auth.maxTokenLifetimeSec)
    throw new Error(`lifetime above auth.maxTokenLifetimeSec (${auth.maxTokenLifetimeSec} s)`)
}

function isPublic(request: FastifyRequest): boolean {
  const url = request.routeOptions.url
  // Unmatched URLs fall through to the 404 handler, which reveals nothing.
  if (url === undefined) return true
  // The documentation pages and the GraphiQL page are static; every query they send needs a token.
  return request.routeOptions.config.public === true || /^\/(docs|graphiql)(\/|$)/.test(url)
}

function bearerFromSubprotocols(header: string | undefined): string | undefined {
  const offered = header?.split(',').map((p) => p.trim()) ?? []
  return offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX))?.slice(BEARER_SUBPROTOCOL_PREFIX.length)
}

export function principalFrom(
  claims: Record<string, unknown>,
  onBehalfOfHeader: string | string[] | undefined,
  auth: Config['auth'],
): Principal {
  const subject = claims.sub
  if (typeof subject !== 'string' || !SUBJECT.test(subject)) throw new errors.UNAUTHENTICATED()
  const roles = stringList(claims[auth.rolesClaim]).filter((r): r is Role =>
    (ROLES as readonly string[]).includes(r),
  )
  const principal: Principal = { subject, teams: stringList(claims[auth.teamsClaim]), roles, channel: 'api' }

  if (onBehalfOfHeader !== undefined) {
    const person = Array.isArray(onBehalfOfHeader) ? onBehalfOfHeader[0] : onBehalfOfHeader
    if (!roles.includes('bot')) throw new errors.ON_BEHALF_NOT_ALLOWED()
    if (!person || !SUBJECT.test(person))
      throw new errors.VALIDATION(`${ON_BEHALF_OF_HEADER} is not a valid subject`)
    if (auth.bots.length > 0) {
      const bot = auth.bots.find((b) => b.subject === subject)
      if (!bot?.actFor.some((glob) => matchesGlob(glob, person)))
        throw new errors.BOT_MAY_NOT_ACT_FOR(subject, person)
    }
    principal.onBehalfOf = person
  }
  return principal
}

/** Claims may hold a list or one space/comma separated string (both are common in IdPs). */
function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.length > 0)
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean)
  return []
}

/** Throws 403 unless the principal has the role (admins have every role). */
export function requireRole(principal: Principal, role: Role): void {
  if (!principal.roles.includes(role) && !principal.roles.includes('admin')) {
    throw new errors.FORBIDDEN(`this needs the ${role} role`)
  }
}
