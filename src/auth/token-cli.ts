import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createSigner } from 'fast-jwt'
import { ConfigError, loadConfig } from '../config.js'

/**
 * `npm run -s token -- --sub alice --groups payments --roles requester [--ttl 3600]` prints a
 * development token signed with the HS256 secret (REGENT_JWT_SECRET or the one the embedded default
 * generated under REGENT_DATA_DIR). Only the token goes to stdout, so `$(npm run -s token …)` works.
 */
function main() {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      groups: { type: 'string', default: '' },
      roles: { type: 'string', default: 'viewer' },
      ttl: { type: 'string', default: '3600' },
    },
  })
  if (!values.sub) {
    process.stderr.write(
      'usage: npm run -s token -- --sub alice [--groups a,b] [--roles requester,approver] [--ttl seconds]\n',
    )
    process.exitCode = 2
    return
  }
  const config = loadConfig()
  const ttl = Number(values.ttl)
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > config.auth.maxTokenLifetimeSec) {
    process.stderr.write(
      `regent token: --ttl must be whole seconds from 1 to ${config.auth.maxTokenLifetimeSec} (auth.maxTokenLifetimeSec): the service refuses longer-lived tokens\n`,
    )
    process.exitCode = 2
    return
  }
  const secret = config.auth.jwtSecret ?? readDevSecret(config.dataDir)
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
  const sign = createSigner({
    key: secret,
    algorithm: 'HS256',
    expiresIn: ttl * 1000,
    ...(config.auth.issuer ? { iss: config.auth.issuer } : {}),
    ...(config.auth.audience ? { aud: config.auth.audience } : {}),
  })
  const token = sign({
    sub: values.sub,
    [config.auth.teamsClaim]: list(values.groups),
    [config.auth.rolesClaim]: list(values.roles),
  })
  process.stdout.write(`${token}\n`)
}

function readDevSecret(dataDir: string): string {
  const file = path.join(dataDir, 'jwt-secret')
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    throw new Error(
      `no REGENT_JWT_SECRET and no ${file}: start the service once (npm start) or set REGENT_JWT_SECRET`,
    )
  }
}

try {
  main()
} catch (err) {
  process.stderr.write(`regent token: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`)
  process.exitCode = 1
}
